"""A webhook and dead man's switch receiver for the Molecule scenarios (the containers have no network).

Listens on 127.0.0.1 on a free port, writes the port to --port-file and appends one JSON line per
request ({"method", "path", "body"}) to --log. Answers 200 to everything.
"""

import argparse
import http.server
import json
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            with open(args.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"method": self.command, "path": self.path, "body": body}) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = do_HEAD = _record

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()

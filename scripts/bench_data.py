"""A realistic shop database of a chosen size, for the benchmark.

Payments (uuid keys, emails, amounts, statuses, timestamps, jsonb with free
text), orders, tickets and customers, with their indexes. The server generates
the rows (generate_series) in batches until the heap reaches the share of the
target that tables take; indexes are built at the end. Text is drawn from a
vocabulary mixed with hex tokens and uuids, so a dump compresses about 3-4:1
like real application data, not 160:1 like pgbench's.

    python3 scripts/bench_data.py --dir <cluster dir> --db bench --size-mb 1024
"""

import argparse
import sys
import time

# Share of the final database size taken by tables (the rest are indexes), measured
# on this schema: the load stops at size * HEAP_SHARE before the indexes are built.
HEAP_SHARE = 0.86
BATCH_PAYMENTS = 100000

WORDS = (
    "order delivery refund invoice customer account payment card declined approved pending shipped "
    "warehouse package tracking address street city postal code country phone email support ticket "
    "issue resolved escalated priority urgent please thanks hello regards team manager billing charge "
    "subscription monthly annual plan upgrade downgrade cancel renewal discount coupon voucher gift "
    "return exchange damaged missing late early courier parcel label printed scanned received sent "
    "product item quantity size color blue red green black white small medium large extra stock "
    "available backorder restock supplier vendor batch serial number warranty repair replacement "
    "the a an and or but with without for from to in on at by of about after before during since "
    "customer asked whether could would should might will can cannot did does was were is are be "
    "been being have has had not never always often sometimes today yesterday tomorrow week month "
    "morning evening night weekend holiday sale promotion newsletter unsubscribe login password reset "
    "two factor verification code expired link browser mobile app android ios web checkout cart basket"
).split()

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TYPE payment_status AS ENUM ('pending', 'authorized', 'captured', 'refunded', 'failed', 'disputed');
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid uuid NOT NULL DEFAULT gen_random_uuid(),
    email text NOT NULL,
    full_name text NOT NULL,
    country char(2) NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(12,2) NOT NULL,
    currency char(3) NOT NULL,
    items jsonb NOT NULL,
    shipping_address text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE payments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    order_id bigint NOT NULL,
    email text NOT NULL,
    amount numeric(12,2) NOT NULL,
    currency char(3) NOT NULL,
    status payment_status NOT NULL,
    provider text NOT NULL,
    provider_ref text NOT NULL,
    card_last4 char(4),
    metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    captured_at timestamptz
);
CREATE TABLE tickets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint,
    subject text NOT NULL,
    body text NOT NULL,
    status text NOT NULL,
    priority smallint NOT NULL,
    tags text[] NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE FUNCTION bench_text(n int) RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT string_agg(CASE WHEN random() < 0.08 THEN substr(md5(random()::text), 1, 8)
                           ELSE (%(words)s)[1 + floor(random() * %(nwords)d)::int] END, ' ')
      FROM generate_series(1, greatest(n, 1))
$$;
"""

# One batch: %(p)d payments, with orders, customers and tickets in proportion; ids continue from %(base)d.
BATCH = """
INSERT INTO customers (email, full_name, country, created_at)
SELECT 'customer' || (%(base)d / 8 + g) || '@' || (ARRAY['example.com','mail.test','shop.invalid','corp.example'])[1 + g %% 4],
       initcap(bench_text(1)) || ' ' || initcap(substr(md5(random()::text), 1, 7)),
       (ARRAY['DE','FR','GB','US','NL','ES','IT','PL'])[1 + (random() * 7)::int],
       now() - random() * interval '1200 days'
  FROM generate_series(1, %(p)d / 8) g;

INSERT INTO orders (customer_id, status, total, currency, items, shipping_address, created_at, updated_at)
SELECT 1 + (random() * (%(base)d / 8 + %(p)d / 8 - 1))::bigint,
       (ARRAY['new','paid','packed','shipped','delivered','cancelled','returned'])[1 + (random() * 6)::int],
       round((random() * 800)::numeric, 2),
       (ARRAY['EUR','USD','GBP'])[1 + g %% 3],
       jsonb_build_array(jsonb_build_object('sku', upper(substr(md5(random()::text), 1, 10)), 'qty', 1 + (random() * 3)::int,
                                            'price', round((random() * 200)::numeric, 2), 'name', bench_text(3))),
       (1 + (random() * 300)::int) || ' ' || initcap(bench_text(2)) || ' Street, ' || lpad((random() * 99999)::int::text, 5, '0'),
       t, t + random() * interval '20 days'
  FROM (SELECT g, now() - random() * interval '900 days' AS t FROM generate_series(1, %(p)d / 2) g) s;

INSERT INTO payments (order_id, email, amount, currency, status, provider, provider_ref, card_last4, metadata, created_at, captured_at)
SELECT 1 + (random() * (%(base)d / 2 + %(p)d / 2 - 1))::bigint,
       'buyer' || (%(base)d + g) || '@' || (ARRAY['example.com','mail.test','shop.invalid'])[1 + g %% 3],
       round((random() * 500)::numeric, 2),
       (ARRAY['EUR','USD','GBP'])[1 + g %% 3],
       (ARRAY['pending','authorized','captured','captured','captured','refunded','failed','disputed'])[1 + (random() * 7)::int]::payment_status,
       (ARRAY['stripe','adyen','paypal','klarna'])[1 + g %% 4],
       'ch_' || substr(md5(random()::text), 1, 24),
       lpad((random() * 9999)::int::text, 4, '0'),
       jsonb_build_object('ip', '10.' || (g %% 250) || '.' || ((g / 250) %% 250) || '.' || (random() * 254)::int,
                          'user_agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2)',
                                               'Mozilla/5.0 (Windows NT 10.0; Win64; x64)'])[1 + g %% 3],
                          'risk_score', round(random()::numeric, 3),
                          'note', bench_text(6 + (random() * 10)::int),
                          'session', gen_random_uuid()),
       t, CASE WHEN random() < 0.8 THEN t + random() * interval '2 hours' END
  FROM (SELECT g, now() - random() * interval '365 days' AS t FROM generate_series(1, %(p)d) g) s;

INSERT INTO tickets (customer_id, subject, body, status, priority, tags, created_at)
SELECT 1 + (random() * (%(base)d / 8 + %(p)d / 8 - 1))::bigint,
       initcap(bench_text(4)),
       bench_text(20 + (random() * 60)::int),
       (ARRAY['open','pending','closed','closed'])[1 + (random() * 3)::int],
       1 + (random() * 3)::int,
       ARRAY[(ARRAY['billing','shipping','refund','account','bug'])[1 + (random() * 4)::int]],
       now() - random() * interval '400 days'
  FROM generate_series(1, %(p)d / 20) g;
"""

INDEXES = """
ALTER TABLE payments ADD PRIMARY KEY (id);
CREATE INDEX payments_created_at ON payments (created_at);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_created_at ON orders (created_at);
CREATE UNIQUE INDEX customers_email ON customers (email);
CREATE INDEX tickets_open ON tickets (created_at) WHERE status <> 'closed';
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE payments ADD FOREIGN KEY (order_id) REFERENCES orders (id);

"""


def _heap_bytes(cluster, db):
    return int(cluster.psql("SELECT sum(pg_table_size(oid)) FROM pg_class WHERE relkind = 'r' "
                            "AND relnamespace = 'public'::regnamespace", db=db).strip() or 0)


def create(cluster, db, size_mb, log=None):
    """Create ``db`` of about ``size_mb`` MiB on ``cluster``; returns rows per table and the final size."""
    log = log or (lambda text: None)
    words = "ARRAY[%s]" % ",".join("'%s'" % w for w in WORDS)
    cluster.psql('CREATE DATABASE "%s"' % db)
    cluster.psql(SCHEMA % {"words": words, "nwords": len(WORDS)}, db=db)
    heap_target = size_mb * 1024 * 1024 * HEAP_SHARE
    base, started = 0, time.time()
    batch = max(1000, min(BATCH_PAYMENTS, int(size_mb * 300)))  # small sizes still get several batches
    while _heap_bytes(cluster, db) < heap_target:
        cluster.psql(BATCH % {"p": batch, "base": base}, db=db)
        base += batch
        log("generated %d payments, %.0f MiB of tables (%.0fs)" % (base, _heap_bytes(cluster, db) / 1048576.0, time.time() - started))
    cluster.psql(INDEXES, db=db)
    cluster.psql("VACUUM (FREEZE, ANALYZE)", db=db)
    rows = {}
    for table in ("customers", "orders", "payments", "tickets"):
        rows[table] = int(cluster.psql("SELECT count(*) FROM %s" % table, db=db).strip())
    size = int(cluster.psql("SELECT pg_database_size(current_database())", db=db).strip())
    log("database %s: %.0f MiB, %s (%.0fs)" % (db, size / 1048576.0, rows, time.time() - started))
    return {"rows": rows, "bytes": size, "seconds": round(time.time() - started, 1)}


def main(argv=None):
    sys.path.insert(0, __file__.rsplit("/", 2)[0])
    from scripts import pgcluster

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True, help="cluster directory from scripts/pgcluster.py")
    parser.add_argument("--db", default="bench")
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args(argv)
    print(create(pgcluster.load(args.dir), args.db, args.size_mb, log=lambda text: print(text, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

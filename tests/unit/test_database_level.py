"""_database_level: the SQL of a database's own properties, renamed to the restore's target."""

import pytest

SCRIPT = r'''SET statement_timeout = 0;
CREATE DATABASE "Old ""db""" WITH TEMPLATE = template0 ENCODING = 'UTF8';
ALTER DATABASE "Old ""db""" OWNER TO postgres;
\connect -reuse-previous=on "dbname='Old \"db\"'"
SET client_encoding = 'UTF8';
COMMENT ON DATABASE "Old ""db""" IS 'about DATABASE "Old ""db""";
ALTER DATABASE "Old ""db""" x';
ALTER DATABASE "Old ""db""" SET search_path TO 'public', 'odd schema';
ALTER ROLE "a DATABASE b" IN DATABASE "Old ""db""" SET work_mem TO '7MB';
REVOKE CONNECT,TEMPORARY ON DATABASE "Old ""db""" FROM PUBLIC;
GRANT ALL ON DATABASE "Old ""db""" TO app;
'''


def test_statements_after_the_connect_renamed_to_the_target(engine):
    level = engine.database_level
    found = [level.renamed(s, 'Old "db"', "new one") for s in level.statements(SCRIPT)]
    assert found == [
        "SET client_encoding = 'UTF8';",
        "COMMENT ON DATABASE \"new one\" IS 'about DATABASE \"Old \"\"db\"\"\";\nALTER DATABASE \"Old \"\"db\"\"\" x';",
        "ALTER DATABASE \"new one\" SET search_path TO 'public', 'odd schema';",
        "ALTER ROLE \"a DATABASE b\" IN DATABASE \"new one\" SET work_mem TO '7MB';",
        "REVOKE CONNECT,TEMPORARY ON DATABASE \"new one\" FROM PUBLIC;",
        "GRANT ALL ON DATABASE \"new one\" TO app;",
    ]
    with pytest.raises(engine.errors.RestoreError, match="not a statement this restore knows"):
        level.renamed('DROP DATABASE "Old ""db""";', 'Old "db"', "new one")

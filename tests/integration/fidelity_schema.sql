-- Constructs PostgreSQL's regression database has and a restore got wrong (issue 13, section 6), written small.

-- A foreign key with a COMMENT: a subset restore leaves the key out, so its comment must go too.
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL,
                     CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id));
COMMENT ON CONSTRAINT orders_customer_fk ON orders IS 'every order has a customer';
-- An index with the same name as that constraint (constraint and index names live apart), with its own comment:
-- it must stay.
CREATE TABLE order_lines (order_id int NOT NULL, line int NOT NULL, amount numeric(10, 2),
                          CONSTRAINT order_lines_order_fk FOREIGN KEY (order_id) REFERENCES orders (id));
CREATE INDEX orders_customer_fk ON order_lines (order_id, line);
COMMENT ON INDEX orders_customer_fk IS 'an index, not the constraint';
COMMENT ON CONSTRAINT order_lines_order_fk ON order_lines IS 'lines belong to an order';

INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
INSERT INTO orders SELECT g, 1 + g % 50 FROM generate_series(1, 200) g;
INSERT INTO order_lines SELECT 1 + g % 200, g, g * 1.5 FROM generate_series(1, 600) g;

-- A partitioned parent, two levels deep: the manifest lists only its leaf partitions.
CREATE TABLE readings (taken date NOT NULL, sensor int NOT NULL, value float8) PARTITION BY RANGE (taken);
CREATE TABLE readings_2023 PARTITION OF readings FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE readings_2024 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    PARTITION BY LIST (sensor);
CREATE TABLE readings_2024_low PARTITION OF readings_2024 FOR VALUES IN (1, 2);
CREATE TABLE readings_2024_rest PARTITION OF readings_2024 DEFAULT;
INSERT INTO readings SELECT date '2023-01-01' + (g % 700), g % 5, g FROM generate_series(1, 1000) g;

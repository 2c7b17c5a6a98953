# title: tables of one source joined by pushable conjuncts become one fragment
SELECT c.name, o.amount, i.qty FROM pg.public.customers AS c JOIN pg.public.orders AS o ON o.customer_id = c.id JOIN lake.main.items AS i ON i.order_id = o.id WHERE c.region = 'north';
fragment __fragment_0 lake: SELECT "i"."order_id" AS "order_id", "i"."qty" AS "qty" FROM "items" AS "i";
fragment __fragment_1 pg: SELECT "c"."name" AS "c.name", "o"."id" AS "o.id", "o"."amount" AS "o.amount" FROM "public"."customers" AS "c" CROSS JOIN "public"."orders" AS "o" WHERE "o"."customer_id" = "c"."id" AND "c"."region" = 'north';
residual: SELECT "__g1"."c.name" AS "name", "__g1"."o.amount" AS "amount", "i"."qty" AS "qty" FROM "__fragment_1" AS "__g1" JOIN "__fragment_0" AS "i" ON "i"."order_id" = "__g1"."o.id";
join: __fragment_0.order_id = __fragment_1.o.id either way
dynamic filter: __fragment_1.o.id -> __fragment_0.order_id

# title: a star over a join group gets distinct output names
SELECT * FROM pg.public.customers AS c JOIN pg.public.nation AS n ON n.id = c.nation_id JOIN lake.main.events AS e ON e.customer_id = c.id;
fragment __fragment_0 lake: SELECT "e"."id" AS "id", "e"."customer_id" AS "customer_id", "e"."kind" AS "kind", "e"."at" AS "at" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "c"."id" AS "c.id", "c"."name" AS "c.name", "c"."region" AS "c.region", "c"."tier" AS "c.tier", "c"."active" AS "c.active", "c"."created" AS "c.created", "c"."nation_id" AS "c.nation_id", "n"."id" AS "n.id", "n"."name" AS "n.name" FROM "public"."customers" AS "c" CROSS JOIN "public"."nation" AS "n" WHERE "n"."id" = "c"."nation_id";
residual: SELECT "__g1"."c.id" AS "id", "__g1"."c.name" AS "name", "__g1"."c.region" AS "region", "__g1"."c.tier" AS "tier", "__g1"."c.active" AS "active", "__g1"."c.created" AS "created", "__g1"."c.nation_id" AS "nation_id", "__g1"."n.id" AS "id_2", "__g1"."n.name" AS "name_2", "e"."id" AS "id_3", "e"."customer_id" AS "customer_id", "e"."kind" AS "kind", "e"."at" AS "at" FROM "__fragment_1" AS "__g1" JOIN "__fragment_0" AS "e" ON "e"."customer_id" = "__g1"."c.id";
join: __fragment_0.customer_id = __fragment_1.c.id either way

# title: a source with a cache rule joins nothing
SELECT r.rate, f.rate, e.kind FROM cached.public.rates AS r JOIN cached.public.fx AS f ON f.day = r.day JOIN lake.main.events AS e ON e.at = r.day;
fragment __fragment_0 cached: SELECT "r"."day" AS "day", "r"."rate" AS "rate" FROM "public"."rates" AS "r";
fragment __fragment_1 cached: SELECT "f"."day" AS "day", "f"."rate" AS "rate" FROM "public"."fx" AS "f";
fragment __fragment_2 lake: SELECT "e"."kind" AS "kind", "e"."at" AS "at" FROM "events" AS "e";
residual: SELECT "r"."r.rate" AS "rate", "f"."f.rate" AS "rate_2", "e"."kind" AS "kind" FROM (SELECT "r"."day" AS "r.day", "r"."rate" AS "r.rate" FROM "__fragment_0" AS "r") AS "r" JOIN (SELECT "f"."day" AS "f.day", "f"."rate" AS "f.rate" FROM "__fragment_1" AS "f") AS "f" ON "f"."f.day" = "r"."r.day" JOIN "__fragment_2" AS "e" ON "e"."at" = "r"."r.day";
not pushed: join condition "f"."day" = "r"."day": the source's tables are read per table, for the partition cache
join: __fragment_1.day = __fragment_0.day either way
join: __fragment_2.at = __fragment_0.day either way

# title: an outer join keeps its tables apart
SELECT c.name, o.amount, e.kind FROM pg.public.customers AS c LEFT JOIN pg.public.orders AS o ON o.customer_id = c.id JOIN lake.main.events AS e ON e.customer_id = c.id;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
fragment __fragment_1 pg: SELECT "o"."customer_id" AS "customer_id", "o"."amount" AS "amount" FROM "public"."orders" AS "o";
fragment __fragment_2 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name", "o"."amount" AS "amount", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" LEFT JOIN (SELECT "o"."amount" AS "amount", "o"."customer_id" AS "o.customer_id" FROM "__fragment_1" AS "o") AS "o" ON "o"."o.customer_id" = "c"."id" JOIN (SELECT "e"."customer_id" AS "e.customer_id", "e"."kind" AS "kind" FROM "__fragment_2" AS "e") AS "e" ON "e"."e.customer_id" = "c"."id";

# title: a text join condition in PostgreSQL is pushed (equality is exact there)
SELECT c.name, n.name, e.kind FROM pg.public.customers AS c JOIN pg.public.nation AS n ON n.name = c.region JOIN lake.main.events AS e ON e.customer_id = c.id;
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "c"."id" AS "c.id", "c"."name" AS "c.name", "n"."name" AS "n.name" FROM "public"."customers" AS "c" CROSS JOIN "public"."nation" AS "n" WHERE "n"."name" = "c"."region";
residual: SELECT "__g1"."c.name" AS "name", "__g1"."n.name" AS "name_2", "e"."kind" AS "kind" FROM "__fragment_1" AS "__g1" JOIN "__fragment_0" AS "e" ON "e"."customer_id" = "__g1"."c.id";
join: __fragment_0.customer_id = __fragment_1.c.id either way

# title: MySQL's case-insensitive text equality keeps a text join in DataFusion
SELECT p.name, s.name, i.qty FROM my.shop.products AS p JOIN my.shop.suppliers AS s ON s.name = p.name JOIN lake.main.items AS i ON i.product_id = p.id;
fragment __fragment_0 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name` FROM `shop`.`products` AS `p`;
fragment __fragment_1 my: SELECT `s`.`name` AS `name` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_2 lake: SELECT "i"."product_id" AS "product_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "p"."p.name" AS "name", "s"."s.name" AS "name_2", "i"."qty" AS "qty" FROM (SELECT "p"."id" AS "id", "p"."name" AS "p.name" FROM "__fragment_0" AS "p") AS "p" JOIN (SELECT "s"."name" AS "s.name" FROM "__fragment_1" AS "s") AS "s" ON "s"."s.name" = "p"."p.name" JOIN "__fragment_2" AS "i" ON "i"."product_id" = "p"."id";
not pushed: join condition "s"."name" = "p"."name": text comparison in this source follows its collation (case/accent-insensitive)
join: __fragment_1.name = __fragment_0.name either way
join: __fragment_2.product_id = __fragment_0.id either way

# title: a join condition inside a parenthesized AND moves into the join group with its neighbour, and leaves the residual (it stayed there, naming a column the group did not return)
SELECT o.qty, (o.ordered_at + INTERVAL '1 DAY') AS t FROM pg.public.customers AS c, pg.public.orders AS o WHERE o.customer_id = c.id AND (o.qty > 3 AND o.qty <= c.nation_id);
fragment __fragment_0 pg: SELECT "o"."qty" AS "o.qty", "o"."ordered_at" AS "o.ordered_at" FROM "public"."customers" AS "c" CROSS JOIN "public"."orders" AS "o" WHERE "o"."customer_id" = "c"."id" AND "o"."qty" <= "c"."nation_id" AND "o"."qty" > 3;
residual: SELECT "__g0"."o.qty" AS "qty", ("__g0"."o.ordered_at" + INTERVAL '1 DAY') AS "t" FROM "__fragment_0" AS "__g0";
not pushed: whole query to pg: INTERVAL is not among the source's pushable operations

# title: a FROM list that joins on a low-distinct key first is reordered: the selective table leads
SELECT c.name, s.name FROM pg.public.customers AS c JOIN my.shop.suppliers AS s ON s.nation_id = c.nation_id JOIN pg.public.nation AS n ON n.id = c.nation_id WHERE n.name = 'FRANCE';
fragment __fragment_0 my: SELECT `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_1 pg: SELECT "c"."name" AS "c.name", "c"."nation_id" AS "c.nation_id" FROM "public"."customers" AS "c" CROSS JOIN "public"."nation" AS "n" WHERE "n"."id" = "c"."nation_id" AND "n"."name" = 'FRANCE';
residual: SELECT "__g1"."c.name" AS "name", "s"."name" AS "name_2" FROM "__fragment_1" AS "__g1", "__fragment_0" AS "s" WHERE "s"."nation_id" = "__g1"."c.nation_id";
join order: c, n, s (written c, s, n): an estimated 2,000 rows through its joins against 41,600
join: __fragment_0.nation_id = __fragment_1.c.nation_id either way

# title: the same query written in the order the estimates favour is left as written
SELECT c.name, s.name FROM pg.public.nation AS n JOIN pg.public.customers AS c ON n.id = c.nation_id JOIN my.shop.suppliers AS s ON s.nation_id = c.nation_id WHERE n.name = 'FRANCE';
fragment __fragment_0 my: SELECT `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_1 pg: SELECT "c"."name" AS "c.name", "c"."nation_id" AS "c.nation_id" FROM "public"."nation" AS "n" CROSS JOIN "public"."customers" AS "c" WHERE "n"."id" = "c"."nation_id" AND "n"."name" = 'FRANCE';
residual: SELECT "__g1"."c.name" AS "name", "s"."name" AS "name_2" FROM "__fragment_1" AS "__g1" JOIN "__fragment_0" AS "s" ON "s"."nation_id" = "__g1"."c.nation_id";
join: __fragment_0.nation_id = __fragment_1.c.nation_id either way

# title: comma joins are reordered too, the WHERE kept whole
SELECT c.name, s.name, n.name FROM pg.public.customers AS c, my.shop.suppliers AS s, pg.public.nation AS n WHERE s.nation_id = c.nation_id AND n.id = s.nation_id AND (n.name = 'FRANCE' OR n.name = 'SPAIN');
fragment __fragment_0 pg: SELECT "c"."name" AS "name", "c"."nation_id" AS "nation_id" FROM "public"."customers" AS "c";
fragment __fragment_1 my: SELECT `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_2 pg: SELECT "n"."id" AS "id", "n"."name" AS "name" FROM "public"."nation" AS "n" WHERE "n"."name" = 'FRANCE' OR "n"."name" = 'SPAIN';
residual: SELECT "c"."c.name" AS "name", "s"."s.name" AS "name_2", "n"."n.name" AS "name_3" FROM (SELECT "c"."name" AS "c.name", "c"."nation_id" AS "c.nation_id" FROM "__fragment_0" AS "c") AS "c", (SELECT "s"."name" AS "s.name", "s"."nation_id" AS "s.nation_id" FROM "__fragment_1" AS "s") AS "s", (SELECT "n"."id" AS "id", "n"."name" AS "n.name" FROM "__fragment_2" AS "n") AS "n" WHERE "s"."s.nation_id" = "c"."c.nation_id" AND "n"."id" = "s"."s.nation_id";
join: __fragment_1.nation_id = __fragment_0.nation_id either way
join: __fragment_2.id = __fragment_1.nation_id either way
dynamic filter: __fragment_2.id -> __fragment_1.nation_id
dynamic filter: __fragment_2.id -> __fragment_0.nation_id
dynamic filter: __fragment_1.nation_id -> __fragment_0.nation_id

# title: an outer join keeps the written order
SELECT c.name, s.name FROM pg.public.customers AS c JOIN my.shop.suppliers AS s ON s.nation_id = c.nation_id LEFT JOIN pg.public.nation AS n ON n.id = c.nation_id AND n.name = 'FRANCE';
fragment __fragment_0 pg: SELECT "c"."name" AS "name", "c"."nation_id" AS "nation_id" FROM "public"."customers" AS "c";
fragment __fragment_1 my: SELECT `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_2 pg: SELECT "n"."id" AS "id" FROM "public"."nation" AS "n" WHERE "n"."name" = 'FRANCE';
residual: SELECT "c"."c.name" AS "name", "s"."s.name" AS "name_2" FROM (SELECT "c"."name" AS "c.name", "c"."nation_id" AS "c.nation_id" FROM "__fragment_0" AS "c") AS "c" JOIN (SELECT "s"."name" AS "s.name", "s"."nation_id" AS "s.nation_id" FROM "__fragment_1" AS "s") AS "s" ON "s"."s.nation_id" = "c"."c.nation_id" LEFT JOIN "__fragment_2" AS "n" ON "n"."id" = "c"."c.nation_id";

# title: SELECT * was expanded before the pass: its columns keep the written order while the joins are reordered
SELECT * FROM pg.public.customers AS c JOIN my.shop.suppliers AS s ON s.nation_id = c.nation_id JOIN pg.public.nation AS n ON n.id = c.nation_id WHERE n.name = 'FRANCE';
fragment __fragment_0 my: SELECT `s`.`id` AS `id`, `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_1 pg: SELECT "c"."id" AS "c.id", "c"."name" AS "c.name", "c"."region" AS "c.region", "c"."tier" AS "c.tier", "c"."active" AS "c.active", "c"."created" AS "c.created", "c"."nation_id" AS "c.nation_id", "n"."id" AS "n.id", "n"."name" AS "n.name" FROM "public"."customers" AS "c" CROSS JOIN "public"."nation" AS "n" WHERE "n"."id" = "c"."nation_id" AND "n"."name" = 'FRANCE';
residual: SELECT "__g1"."c.id" AS "id", "__g1"."c.name" AS "name", "__g1"."c.region" AS "region", "__g1"."c.tier" AS "tier", "__g1"."c.active" AS "active", "__g1"."c.created" AS "created", "__g1"."c.nation_id" AS "nation_id", "s"."id" AS "id_2", "s"."name" AS "name_2", "s"."nation_id" AS "nation_id_2", "__g1"."n.id" AS "id_3", "__g1"."n.name" AS "name_3" FROM "__fragment_1" AS "__g1", "__fragment_0" AS "s" WHERE "s"."nation_id" = "__g1"."c.nation_id";
join order: c, n, s (written c, s, n): an estimated 2,000 rows through its joins against 41,600
join: __fragment_0.nation_id = __fragment_1.c.nation_id either way

# title: a LIMIT without ORDER BY keeps the written order (the rows it keeps would change)
SELECT c.name, s.name FROM pg.public.customers AS c JOIN my.shop.suppliers AS s ON s.nation_id = c.nation_id JOIN pg.public.nation AS n ON n.id = c.nation_id WHERE n.name = 'FRANCE' LIMIT 5;
fragment __fragment_0 my: SELECT `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_1 pg: SELECT "c"."name" AS "c.name", "c"."nation_id" AS "c.nation_id" FROM "public"."customers" AS "c" CROSS JOIN "public"."nation" AS "n" WHERE "n"."id" = "c"."nation_id" AND "n"."name" = 'FRANCE';
residual: SELECT "__g1"."c.name" AS "name", "s"."name" AS "name_2" FROM "__fragment_1" AS "__g1" JOIN "__fragment_0" AS "s" ON "s"."nation_id" = "__g1"."c.nation_id" LIMIT 5;
join: __fragment_0.nation_id = __fragment_1.c.nation_id either way

# title: a derived table in the FROM list keeps the written order
SELECT c.name, s.name FROM pg.public.customers AS c JOIN my.shop.suppliers AS s ON s.nation_id = c.nation_id JOIN (SELECT id FROM pg.public.nation WHERE name = 'FRANCE') AS n ON n.id = c.nation_id;
fragment __fragment_0 pg: SELECT "nation"."id" AS "id" FROM "public"."nation" AS "nation" WHERE "nation"."name" = 'FRANCE';
fragment __fragment_1 pg: SELECT "c"."name" AS "name", "c"."nation_id" AS "nation_id" FROM "public"."customers" AS "c";
fragment __fragment_2 my: SELECT `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
residual: SELECT "c"."c.name" AS "name", "s"."s.name" AS "name_2" FROM (SELECT "c"."name" AS "c.name", "c"."nation_id" AS "c.nation_id" FROM "__fragment_1" AS "c") AS "c" JOIN (SELECT "s"."name" AS "s.name", "s"."nation_id" AS "s.nation_id" FROM "__fragment_2" AS "s") AS "s" ON "s"."s.nation_id" = "c"."c.nation_id" JOIN "__fragment_0" AS "n" ON "n"."id" = "c"."c.nation_id";
join: __fragment_2.nation_id = __fragment_1.nation_id either way
join: __fragment_0.id = __fragment_1.nation_id either way
dynamic filter: __fragment_0.id -> __fragment_1.nation_id
dynamic filter: __fragment_2.nation_id -> __fragment_1.nation_id
dynamic filter: __fragment_0.id -> __fragment_2.nation_id

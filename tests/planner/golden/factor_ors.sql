# title: a join condition repeated in every branch of an OR becomes one join condition
SELECT p.name, i.qty FROM my.shop.products AS p, lake.main.items AS i WHERE (p.id = i.product_id AND p.category = 'a' AND i.qty < 5) OR (p.id = i.product_id AND p.category = 'b' AND i.qty > 10);
fragment __fragment_0 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name`, `p`.`category` AS `category` FROM `shop`.`products` AS `p` WHERE `p`.`category` = 'a' OR `p`.`category` = 'b';
fragment __fragment_1 lake: SELECT "i"."product_id" AS "product_id", "i"."qty" AS "qty" FROM "items" AS "i" WHERE "i"."qty" < 5 OR "i"."qty" > 10;
residual: SELECT "p"."name" AS "name", "i"."qty" AS "qty" FROM "__fragment_0" AS "p", "__fragment_1" AS "i" WHERE "p"."id" = "i"."product_id" AND (("p"."category" = 'a' AND "i"."qty" < 5) OR ("p"."category" = 'b' AND "i"."qty" > 10));
join: __fragment_0.id = __fragment_1.product_id either way
dynamic filter: __fragment_0.id -> __fragment_1.product_id

# title: a branch left empty drops the OR
SELECT c.name FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id WHERE (c.tier = 1 AND e.kind = 'x') OR (c.tier = 1);
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."tier" = 1;
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";
join: __fragment_1.customer_id = __fragment_0.id either way
dynamic filter: __fragment_0.id -> __fragment_1.customer_id

# title: an OR factored over a join group: what stays of it in DataFusion reads the group's columns (TPC-H Q19 over one MariaDB planned only as per-table fragments before)
SELECT p.name FROM my.shop.products AS p, my.shop.suppliers AS s WHERE (s.id = p.supplier_id AND s.name = 'acme' AND p.price < 5) OR (s.id = p.supplier_id AND s.name = 'acme' AND p.price > 100);
fragment __fragment_0 my: SELECT `p`.`name` AS `p.name`, `s`.`name` AS `s.name` FROM `shop`.`products` AS `p` CROSS JOIN `shop`.`suppliers` AS `s` WHERE `s`.`id` = `p`.`supplier_id` AND (`p`.`price` < 5 OR `p`.`price` > 100) AND `s`.`name` = 'acme';
residual: SELECT "__g0"."p.name" AS "name" FROM "__fragment_0" AS "__g0" WHERE "__g0"."s.name" = 'acme';
not pushed: whole query to my: text comparison in this source follows its collation (case/accent-insensitive)
not pushed: filter "s"."name" = 'acme' on my.shop.suppliers: text comparison in this source follows its collation (case/accent-insensitive); pushed as a wider filter and re-checked

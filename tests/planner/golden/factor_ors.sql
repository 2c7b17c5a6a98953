# title: a join condition repeated in every branch of an OR becomes one join condition
SELECT p.name, i.qty FROM my.shop.products AS p, lake.main.items AS i WHERE (p.id = i.product_id AND p.category = 'a' AND i.qty < 5) OR (p.id = i.product_id AND p.category = 'b' AND i.qty > 10);
fragment __fragment_0 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name`, `p`.`category` AS `category` FROM `shop`.`products` AS `p` WHERE `p`.`category` = 'a' OR `p`.`category` = 'b';
fragment __fragment_1 lake: SELECT "i"."product_id" AS "product_id", "i"."qty" AS "qty" FROM "items" AS "i" WHERE "i"."qty" < 5 OR "i"."qty" > 10;
residual: SELECT "p"."name" AS "name", "i"."qty" AS "qty" FROM "__fragment_0" AS "p", "__fragment_1" AS "i" WHERE "p"."id" = "i"."product_id" AND (("p"."category" = 'a' AND "i"."qty" < 5) OR ("p"."category" = 'b' AND "i"."qty" > 10));
join: __fragment_0.id = __fragment_1.product_id either way
dynamic filter: __fragment_0.id -> __fragment_1.product_id

# title: a branch left empty drops the OR
SELECT c.name FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id WHERE (c.tier = 1 AND e.kind = 'x') OR (c.tier = 1);
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name", "c"."tier" AS "tier" FROM "public"."customers" AS "c" WHERE "c"."tier" = 1;
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";
join: __fragment_1.customer_id = __fragment_0.id either way
dynamic filter: __fragment_0.id -> __fragment_1.customer_id

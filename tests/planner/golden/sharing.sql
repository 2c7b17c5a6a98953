# title: two reads of the same rows become one fragment with the union of their columns
SELECT s.city, c.name FROM shop.main.stores AS s JOIN pg.public.customers AS c ON c.id = s.id WHERE s.id > (SELECT min(s.id) FROM shop.main.stores AS s);
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
fragment __fragment_2 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
residual: SELECT "s"."city" AS "city", "c"."name" AS "name" FROM "__fragment_0" AS "s" JOIN "__fragment_2" AS "c" ON "c"."id" = "s"."id" WHERE "s"."id" > (SELECT MIN("s"."id") AS "_col_0" FROM "__fragment_0" AS "s");
join: __fragment_2.id = __fragment_0.id either way

# title: different table aliases keep fragments apart
SELECT a.day, b.rate FROM cached.public.rates AS a JOIN cached.public.rates AS b ON b.day = a.day WHERE a.currency = 'EUR' AND b.currency = 'EUR';
fragment __fragment_0 cached: SELECT "a"."day" AS "day" FROM "public"."rates" AS "a" WHERE "a"."currency" = 'EUR';
fragment __fragment_1 cached: SELECT "b"."day" AS "day", "b"."rate" AS "rate" FROM "public"."rates" AS "b" WHERE "b"."currency" = 'EUR';
residual: SELECT "a"."a.day" AS "day", "b"."rate" AS "rate" FROM (SELECT "a"."day" AS "a.day" FROM "__fragment_0" AS "a") AS "a" JOIN (SELECT "b"."day" AS "b.day", "b"."rate" AS "rate" FROM "__fragment_1" AS "b") AS "b" ON "b"."b.day" = "a"."a.day";
not pushed: join condition "b"."day" = "a"."day": the source's tables are read per table, for the partition cache
join: __fragment_1.day = __fragment_0.day either way

# title: different filters keep fragments apart
SELECT a.rate, b.rate FROM cached.public.rates AS a JOIN cached.public.rates AS b ON b.day = a.day WHERE a.currency = 'EUR' AND b.currency = 'USD';
fragment __fragment_0 cached: SELECT "a"."day" AS "day", "a"."rate" AS "rate" FROM "public"."rates" AS "a" WHERE "a"."currency" = 'EUR';
fragment __fragment_1 cached: SELECT "b"."day" AS "day", "b"."rate" AS "rate" FROM "public"."rates" AS "b" WHERE "b"."currency" = 'USD';
residual: SELECT "a"."a.rate" AS "rate", "b"."b.rate" AS "rate_2" FROM (SELECT "a"."day" AS "a.day", "a"."rate" AS "a.rate" FROM "__fragment_0" AS "a") AS "a" JOIN (SELECT "b"."day" AS "b.day", "b"."rate" AS "b.rate" FROM "__fragment_1" AS "b") AS "b" ON "b"."b.day" = "a"."a.day";
not pushed: join condition "b"."day" = "a"."day": the source's tables are read per table, for the partition cache
join: __fragment_1.day = __fragment_0.day either way

# title: a correlated sub-query over the same table shares its fragment
SELECT i.order_id FROM lake.main.items AS i JOIN pg.public.orders AS o ON o.id = i.order_id WHERE o.qty > (SELECT avg(o2.qty) FROM pg.public.orders AS o2 WHERE o2.customer_id = o.customer_id);
fragment __fragment_0 pg: SELECT "o2"."customer_id" AS "customer_id", "o2"."qty" AS "qty" FROM "public"."orders" AS "o2";
fragment __fragment_1 lake: SELECT "i"."order_id" AS "order_id" FROM "items" AS "i";
fragment __fragment_2 pg: SELECT "o"."id" AS "id", "o"."customer_id" AS "customer_id", "o"."qty" AS "qty" FROM "public"."orders" AS "o";
residual: SELECT "i"."order_id" AS "order_id" FROM "__fragment_1" AS "i" JOIN "__fragment_2" AS "o" ON "o"."id" = "i"."order_id" WHERE "o"."qty" > (SELECT AVG("o2"."qty") AS "_col_0" FROM "__fragment_0" AS "o2" WHERE "o2"."customer_id" = "o"."customer_id");
join: __fragment_2.customer_id = __fragment_0.customer_id directed
join: __fragment_2.id = __fragment_1.order_id either way
dynamic filter: __fragment_2.customer_id -> __fragment_0.customer_id

"""The hot-partition cache: the store (memory and disk tiers, admission and eviction) and the cache-aware
scanner that serves fragments from cached partitions."""

-- customer_vault 0.4.0 -> 0.5.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.

--@ replay

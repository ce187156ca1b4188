-- customer_vault 0.3.0 -> 0.4.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.
-- 0.4.0: export_subject opens only the columns _export_collect sealed itself
-- (functions only: nothing to change by hand).

--@ replay

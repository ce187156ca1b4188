-- customer_vault 0.1.0 -> 0.2.0: the hand-written part of the upgrade.
-- Changes to tables, and DROPs of functions whose signature or return type
-- changed, go before the replay; data migrations that need the new
-- functions go after it.

-- length padding per key (create_key's pad_to, set_key_padding)
ALTER TABLE customer_vault.data_keys
    ADD COLUMN pad_to integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT data_keys_pad_to_check CHECK (pad_to >= 0 AND pad_to <= 4096);
DROP FUNCTION customer_vault.create_key(text, text);

--@ replay

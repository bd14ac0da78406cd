-- The case-folded e-mail (Unicode full case folding, computed by the
-- server: SQL's lower() folds ASCII only on SQLite), one account per folded
-- e-mail. The server fills it and creates its unique index at start
-- (db::migrate), refusing to start when two accounts collide.
ALTER TABLE users ADD COLUMN email_folded TEXT;

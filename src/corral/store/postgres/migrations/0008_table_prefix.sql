-- Nothing to do on PostgreSQL: its tables carry the corral_ prefix since 0001. (SQLite's 0008
-- gives its tables the same prefix; the numbers stay in step.)
SELECT 1;

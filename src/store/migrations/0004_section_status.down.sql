-- Version 3 has no removed sections: they come back, holding only their removed bullets.
ALTER TABLE sections DROP COLUMN status;

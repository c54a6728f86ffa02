-- Every change is announced on channel gatehouse_changes when its transaction
-- commits, so that every node drops its stale cache entries at once; the nodes
-- still read the feed now and then, for notifications lost to a reconnect.
CREATE FUNCTION gatehouse_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_changes', NEW.kind || ':' || NEW.key);
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_change();

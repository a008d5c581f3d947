"""Detection: shared indicators turned into hunts over members' own logs, and back into sightings."""

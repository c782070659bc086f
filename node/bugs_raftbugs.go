//go:build raftbugs

package node

// PlantedBugs is the switchboard of deliberate runtime bugs, present only
// in builds with the raftbugs tag.
var PlantedBugs = &bugs

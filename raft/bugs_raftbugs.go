//go:build raftbugs

package raft

// PlantedBugs is the switchboard of deliberate bugs, present only in builds
// with the raftbugs tag. Tests set a switch, run, and expect a violation.
var PlantedBugs = &bugs

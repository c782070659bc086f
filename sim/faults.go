package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Faults are the rates of every fault the simulator injects. Message
// faults are probabilities per message; the others are mean events per
// second of virtual time (a Poisson process per kind), each event lasting
// a random while (see the table in docs/testing.md). Zero turns a fault
// off.
type Faults struct {
	// Drop loses a message.
	Drop float64
	// Dup delivers a message twice, the copy at its own time.
	Dup float64
	// Delay holds a message 5–300 ms; later messages on the link wait
	// behind it (a congested link keeps its order).
	Delay float64
	// Reorder lets a message overtake the ones sent before it on its link.
	Reorder float64
	// Partition splits the nodes in two groups that cannot talk, for
	// 0.2–5 s: a minority and a majority, often with the leader in the
	// minority.
	Partition float64
	// OneWay cuts the links from one group to the other only, for
	// 0.2–5 s: an asymmetric partition.
	OneWay float64
	// Crash cuts a node's power, now or while its next write is in flight
	// (unsynced data lost, the last write maybe torn), and restarts it
	// 0.05–3 s later from what its disk kept.
	Crash float64
	// Pause stops a node (no ticks, no processing) for 0.05–2 s; what
	// arrived meanwhile waits and is processed at once on resume.
	Pause float64
	// Skew sets a node's clock rate to a random factor in [0.7, 1.3].
	Skew float64
	// SlowDisk makes a node's fsyncs take 20–400 ms for 0.5–5 s.
	SlowDisk float64
	// SlowFSM makes a node's state machine take 2–20 ms per entry for
	// 0.5–5 s.
	SlowFSM float64
	// Transfer asks the leader to hand leadership to a random node
	// (thesis §3.10): not a fault, an operator action the core must
	// survive among the faults.
	Transfer float64
	// Member has the leader change the configuration (thesis §4): remove
	// a voter or learner (down to two voters), add a removed node back
	// with its old disk as a learner or a voter (promoted once caught
	// up, §4.2.1), promote a learner, or change two voters at once
	// through joint consensus (§4.3); the leader itself may be removed
	// (§4.2.2). Removed nodes keep running. Once the faults stop, the
	// initial configuration is restored, so every node must converge.
	Member float64
}

// faultKinds names each fault in the spec string, in canonical order,
// with its default rate (the one "all" and a bare name use).
var faultKinds = []struct {
	name string
	def  float64
	ptr  func(*Faults) *float64
}{
	{"drop", 0.05, func(f *Faults) *float64 { return &f.Drop }},
	{"dup", 0.03, func(f *Faults) *float64 { return &f.Dup }},
	{"delay", 0.05, func(f *Faults) *float64 { return &f.Delay }},
	{"reorder", 0.05, func(f *Faults) *float64 { return &f.Reorder }},
	{"part", 0.3, func(f *Faults) *float64 { return &f.Partition }},
	{"oneway", 0.2, func(f *Faults) *float64 { return &f.OneWay }},
	{"crash", 0.4, func(f *Faults) *float64 { return &f.Crash }},
	{"pause", 0.3, func(f *Faults) *float64 { return &f.Pause }},
	{"skew", 0.2, func(f *Faults) *float64 { return &f.Skew }},
	{"slow", 0.2, func(f *Faults) *float64 { return &f.SlowDisk }},
	{"slowfsm", 0.2, func(f *Faults) *float64 { return &f.SlowFSM }},
	{"transfer", 0.1, func(f *Faults) *float64 { return &f.Transfer }},
	{"member", 0.3, func(f *Faults) *float64 { return &f.Member }},
}

// AllFaults returns every fault at its default rate.
func AllFaults() Faults {
	var f Faults
	for _, k := range faultKinds {
		*k.ptr(&f) = k.def
	}
	return f
}

// MixFaults returns the fault mix of a campaign seed: each fault on with
// even odds, at its default rate scaled by a factor in [0.5, 3).
func MixFaults(seed uint64) Faults {
	rng := rand.New(rand.NewPCG(seed, streamMix))
	var f Faults
	for _, k := range faultKinds {
		if rng.IntN(2) == 0 {
			*k.ptr(&f) = round3(k.def * (0.5 + 2.5*rng.Float64()))
		}
	}
	return f
}

// round3 keeps three significant digits, so a spec string reproduces the
// rates exactly.
func round3(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 3, 64), 64)
	return v
}

// ParseFaults reads a fault spec: comma-separated items, each "name=rate",
// a bare "name" (its default rate), "all" (every fault at its default) or
// "none". Later items override earlier ones, so "all,crash=0" is every
// fault but crashes. Names: drop, dup, delay, reorder, part, oneway,
// crash, pause, skew, slow, transfer, member.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		name, val, hasVal := strings.Cut(item, "=")
		switch {
		case item == "" || item == "none":
			continue
		case item == "all":
			f = AllFaults()
			continue
		}
		k := findFault(name)
		if k < 0 {
			return Faults{}, fmt.Errorf("sim: unknown fault %q in %q", name, spec)
		}
		rate := faultKinds[k].def
		if hasVal {
			r, err := strconv.ParseFloat(val, 64)
			if err != nil || r < 0 {
				return Faults{}, fmt.Errorf("sim: fault %s: rate %q is not a non-negative number", name, val)
			}
			rate = r
		}
		*faultKinds[k].ptr(&f) = rate
	}
	if err := f.validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

func findFault(name string) int {
	for i, k := range faultKinds {
		if k.name == name {
			return i
		}
	}
	return -1
}

func (f Faults) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"drop", f.Drop}, {"dup", f.Dup}, {"delay", f.Delay}, {"reorder", f.Reorder}} {
		if p.v > 1 {
			return fmt.Errorf("sim: fault %s: %g is a probability per message, at most 1", p.name, p.v)
		}
	}
	return nil
}

// String is the canonical spec: ParseFaults(f.String()) == f.
func (f Faults) String() string {
	var parts []string
	for _, k := range faultKinds {
		if v := *k.ptr(&f); v != 0 {
			parts = append(parts, k.name+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

package sim

import "testing"

func TestParseFaults(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Faults
	}{
		{"none", Faults{}},
		{"", Faults{}},
		{"drop=0.1,crash", Faults{Drop: 0.1, Crash: AllFaults().Crash}},
		{"all,crash=0", func() Faults { f := AllFaults(); f.Crash = 0; return f }()},
		{"part=1.5, oneway=0.25", Faults{Partition: 1.5, OneWay: 0.25}},
	} {
		got, err := ParseFaults(tc.spec)
		if err != nil || got != tc.want {
			t.Errorf("ParseFaults(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{"flood=1", "drop=x", "drop=-1", "drop=2"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) succeeded", bad)
		}
	}
}

// TestFaultsStringRoundTrip: the spec a failing seed prints replays it.
func TestFaultsStringRoundTrip(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		f := MixFaults(seed)
		got, err := ParseFaults(f.String())
		if err != nil || got != f {
			t.Fatalf("seed %d: %q parses to %+v, %v; want %+v", seed, f.String(), got, err, f)
		}
	}
}

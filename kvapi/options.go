package kvapi

// Consistency of a read (a Get or a List).
type Consistency string

const (
	// Linearizable reads see every write completed before the read began
	// (the default; thesis §6.4, a read index).
	Linearizable Consistency = "linearizable"
	// Lease reads trust the leader's lease (bounded clock drift; thesis
	// §6.4.1).
	Lease Consistency = "lease"
	// Stale reads come from the chosen node's state and may be old.
	Stale Consistency = "stale"
)

// WriteOptions are what WriteOptions set on a Set or Delete.
type WriteOptions struct {
	// CAS makes the write conditional: it happens only if the key's
	// revision is Revision (0: the key is absent); otherwise it fails
	// with a *CASMismatchError.
	CAS      bool
	Revision uint64
}

// WriteOption modifies a Set or Delete.
type WriteOption func(*WriteOptions)

// WithCAS makes the write conditional on the key's current revision (0:
// the key must be absent).
func WithCAS(revision uint64) WriteOption {
	return func(o *WriteOptions) { o.CAS, o.Revision = true, revision }
}

// ApplyWrite returns the options opts set.
func ApplyWrite(opts []WriteOption) WriteOptions {
	var o WriteOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ReadOptions are what ReadOptions set on a Get.
type ReadOptions struct {
	Consistency Consistency
}

// ReadOption modifies a Get.
type ReadOption func(*ReadOptions)

// WithConsistency sets a read's consistency (Linearizable by default).
func WithConsistency(c Consistency) ReadOption {
	return func(o *ReadOptions) { o.Consistency = c }
}

// ApplyRead returns the options opts set, Linearizable by default.
func ApplyRead(opts []ReadOption) ReadOptions {
	o := ReadOptions{Consistency: Linearizable}
	for _, f := range opts {
		f(&o)
	}
	if o.Consistency == "" {
		o.Consistency = Linearizable
	}
	return o
}

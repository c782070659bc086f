package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex"
	"github.com/raftex/raftex/inspect"
	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/raft"
)

// demoOptions are the flags of `raftex demo`.
type demoOptions struct {
	nodes  int
	step   bool
	keep   bool
	events string
	color  string
	in     io.Reader // where --step reads Enter
}

func demoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local cluster and narrate election, replication, a crash, a snapshot catch-up and a node's replacement",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.in = cmd.InOrStdin()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := runDemo(ctx, o, cmd.OutOrStdout()); err != nil {
				return &exitError{1, fmt.Errorf("demo failed: %w", err)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", 3, "cluster size (3 to 9)")
	f.BoolVar(&o.step, "step", false, "wait for Enter between steps")
	f.BoolVar(&o.keep, "keep", false, "leave the cluster running at the end, with the dashboard URL")
	f.StringVar(&o.events, "events", "all", "event categories to show: state,rpc,commit,snapshot or all")
	f.StringVar(&o.color, "color", "auto", "auto, always or never (NO_COLOR is honoured by auto)")
	return cmd
}

// demo is one run of the narrated scenario.
type demo struct {
	opts    demoOptions
	out     io.Writer
	mu      sync.Mutex // serialises writes to out
	console *inspect.Console
	dir     string
	cluster map[uint64]string
	ids     []uint64
	nodes   map[uint64]*raftex.Node
	readers sync.WaitGroup
	// bulk hides rpc and commit lines while many writes run.
	bulk   atomic.Bool
	hidden atomic.Int64
	// seen records which node saw which event kinds (InstallSnapshot...).
	seen   sync.Map // [2]uint64{node, kind} → true
	stepNo int
}

func runDemo(ctx context.Context, o demoOptions, out io.Writer) error {
	if o.nodes < 3 || o.nodes > 9 {
		return fmt.Errorf("--nodes must be 3 to 9, got %d", o.nodes)
	}
	cats, err := inspect.ParseCategories(o.events)
	if err != nil {
		return err
	}
	color := o.color == "always" || (o.color == "auto" && inspect.ColorFor(out))
	dir, err := os.MkdirTemp("", "raftex-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	d := &demo{opts: o, out: out, dir: dir, cluster: map[uint64]string{}, nodes: map[uint64]*raftex.Node{}}
	d.console = inspect.NewConsole(&lockedWriter{mu: &d.mu, w: out}, inspect.ConsoleOptions{
		Color: color, Categories: cats, HeartbeatSummary: 2 * time.Second,
	})
	for i := 1; i <= o.nodes; i++ {
		id := uint64(i)
		d.ids = append(d.ids, id)
		addr, err := freeLoopbackAddr()
		if err != nil {
			return err
		}
		d.cluster[id] = addr
	}
	defer d.stopAll()
	start := time.Now()
	if err := d.scenario(ctx); err != nil {
		return err
	}
	d.printf("\n✔ demo finished in %.1fs: every check held\n", time.Since(start).Seconds())
	if o.keep {
		lead := d.leader()
		d.printf("\nThe cluster keeps running. Dashboard: http://%s/ui/   (Ctrl-C to stop)\n", d.nodes[lead].ClientAddr())
		for _, id := range d.ids {
			d.printf("  %s  client http://%s\n", node.FormatID(id), d.nodes[id].ClientAddr())
		}
		<-ctx.Done()
	}
	return nil
}

// scenario is the narrated story, one step per heading.
func (d *demo) scenario(ctx context.Context) error {
	d.heading("Start %d nodes over loopback TCP, each with its own write-ahead log", len(d.ids))
	for _, id := range d.ids {
		if err := d.start(id); err != nil {
			return err
		}
	}

	d.heading("Leader election (§5.2): randomized timeouts, PreVote, RequestVote")
	first, term, err := d.waitLeader(ctx, 0)
	if err != nil {
		return err
	}
	d.printf("✔ %s leads term %d\n", node.FormatID(first), term)
	if err := d.waitPublished(ctx); err != nil {
		return err
	}
	d.printf("✔ every node published its client address through the log, so followers can forward writes to the leader\n")
	d.pause()

	d.heading("Replication (§5.3): writes through any node are forwarded to the leader and committed by a majority")
	writes := []struct{ key, value string }{{"user/1", "alice"}, {"user/2", "bob"}, {"user/3", "carol"}}
	for i, w := range writes {
		via := d.ids[i%len(d.ids)]
		rev, err := d.nodes[via].Set(ctx, w.key, []byte(w.value))
		if err != nil {
			return fmt.Errorf("set %s via %s: %w", w.key, node.FormatID(via), err)
		}
		d.printf("✔ SET %s = %s via %s → revision %d\n", w.key, w.value, node.FormatID(via), rev)
	}
	if err := d.waitConverged(ctx); err != nil {
		return err
	}
	d.pause()

	follower := d.followerOf(first)
	d.heading("A linearizable read through follower %s (ReadIndex, thesis §6.4)", node.FormatID(follower))
	v, _, err := d.nodes[follower].Get(ctx, "user/2")
	if err != nil {
		return fmt.Errorf("read via %s: %w", node.FormatID(follower), err)
	}
	if string(v) != "bob" {
		return fmt.Errorf("read user/2 via %s = %q, want bob", node.FormatID(follower), v)
	}
	d.printf("✔ GET user/2 via %s = %s (the leader confirmed its leadership with a heartbeat round first)\n", node.FormatID(follower), v)
	d.pause()

	// The leader now: an election since step 2 (a loaded machine) may
	// have moved it.
	if first, _, err = d.waitLeader(ctx, 0); err != nil {
		return err
	}
	d.heading("The leader %s crashes", node.FormatID(first))
	d.stop(first)
	d.printf("✖ %s is down\n", node.FormatID(first))

	d.heading("Re-election: the remaining nodes elect a new leader with the most up-to-date log (§5.4.1)")
	second, term, err := d.waitLeader(ctx, first)
	if err != nil {
		return err
	}
	d.printf("✔ %s leads term %d\n", node.FormatID(second), term)
	d.pause()

	d.heading("Writes continue with %d of %d nodes", len(d.ids)-1, len(d.ids))
	for i, w := range []struct{ key, value string }{{"user/4", "dave"}, {"user/1", "alice-v2"}} {
		via := d.live()[i%len(d.live())]
		rev, err := d.nodes[via].Set(ctx, w.key, []byte(w.value))
		if err != nil {
			return fmt.Errorf("set %s: %w", w.key, err)
		}
		d.printf("✔ SET %s = %s via %s → revision %d\n", w.key, w.value, node.FormatID(via), rev)
	}
	if deleted, _, err := d.nodes[second].Delete(ctx, "user/3"); err != nil || !deleted {
		return fmt.Errorf("delete user/3: deleted=%t err=%v", deleted, err)
	}
	d.printf("✔ DEL user/3\n")
	d.pause()

	d.heading("The old leader %s comes back and catches up from the log", node.FormatID(first))
	if err := d.start(first); err != nil {
		return err
	}
	if err := d.waitConverged(ctx); err != nil {
		return err
	}
	d.printf("✔ %s caught up: it applied every committed entry\n", node.FormatID(first))
	d.pause()

	lead, _, err := d.waitLeader(ctx, 0)
	if err != nil {
		return err
	}
	lagging := d.followerOf(lead)
	d.heading("Follower %s stops while enough writes happen to trigger a snapshot and log compaction (§7)", node.FormatID(lagging))
	_, lagLast, _, err := d.nodes[lagging].Raft().LogTail(0)
	if err != nil {
		return err
	}
	d.stop(lagging)
	if err := d.bulkWrites(ctx, 600); err != nil {
		return err
	}
	// Whichever node leads when it returns must have compacted away the
	// entries it needs: every live node snapshots on its own schedule.
	if err := waitFor(ctx, func() bool { return d.compactedPast(lagLast + 1) }); err != nil {
		return fmt.Errorf("the live nodes did not compact their logs past %d: %w", lagLast+1, err)
	}
	d.pause()

	d.heading("%s restarts and is caught up by InstallSnapshot (§7)", node.FormatID(lagging))
	if err := d.start(lagging); err != nil {
		return err
	}
	if err := d.waitConverged(ctx); err != nil {
		return err
	}
	// The installed event follows the restore that converged it, a moment
	// later on the event stream.
	installed := func() bool {
		_, ok := d.seen.Load([2]uint64{lagging, uint64(raft.EventSnapshotInstalled)})
		return ok
	}
	if err := waitFor(ctx, installed); err != nil {
		return fmt.Errorf("%s caught up without InstallSnapshot: the leader's log still covered it (%w)", node.FormatID(lagging), err)
	}
	d.printf("✔ %s installed the leader's snapshot, then replayed the entries after it\n", node.FormatID(lagging))
	d.pause()

	if err := d.replaceFailed(ctx); err != nil {
		return err
	}

	d.heading("Final state: every node agrees")
	return d.finalTable(ctx)
}

// replaceFailed is the operator's replacement of a machine that died for
// good (docs/operations.md): remove it, then a new node with an empty data
// dir joins through any member, as a learner promoted once caught up
// (thesis §4.1, §4.2.1).
func (d *demo) replaceFailed(ctx context.Context) error {
	lead, _, err := d.waitLeader(ctx, 0)
	if err != nil {
		return err
	}
	failed := d.followerOf(lead)
	d.heading("Follower %s fails for good: remove it, and a new node joins in its place (thesis §4)", node.FormatID(failed))
	d.stop(failed)
	d.printf("✖ %s is down, its disk lost\n", node.FormatID(failed))
	// Through the leader, asked again should an election have moved it
	// between the question and the proposal.
	var removeErr error
	err = waitFor(ctx, func() bool {
		lead, _, removeErr = d.waitLeader(ctx, 0)
		if removeErr != nil {
			return true
		}
		removeErr = d.nodes[lead].Raft().RemoveMember(ctx, failed)
		return !errors.Is(removeErr, raft.ErrNotLeader)
	})
	if err != nil || removeErr != nil {
		return fmt.Errorf("remove %s: %w", node.FormatID(failed), errors.Join(err, removeErr))
	}
	d.printf("✔ raftex member remove %s: the configuration entry committed\n", node.FormatID(failed))
	d.ids = slices.DeleteFunc(d.ids, func(id uint64) bool { return id == failed })
	joiner := uint64(0)
	for id := range d.cluster {
		joiner = max(joiner, id+1)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	d.cluster[joiner] = addr
	via := d.ids[0]
	d.ids = append(d.ids, joiner)
	if err := d.startNode(joiner, &raftex.Join{URL: "http://" + d.nodes[via].ClientAddr()}); err != nil {
		return err
	}
	d.printf("✔ raftex serve --id %s --join http://%s: added as a learner\n", node.FormatID(joiner), d.nodes[via].ClientAddr())
	err = waitFor(ctx, func() bool {
		for _, id := range d.live() {
			if !d.nodes[id].Raft().Membership().IsVoter(joiner) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%s was not promoted to voter: %w", node.FormatID(joiner), err)
	}
	if err := d.waitConverged(ctx); err != nil {
		return err
	}
	d.printf("✔ %s caught up and was promoted to voter: the cluster has %d voters again\n", node.FormatID(joiner), len(d.ids))
	d.pause()
	return nil
}

// start starts (or restarts) node id and streams its events.
func (d *demo) start(id uint64) error { return d.startNode(id, nil) }

// startNode starts node id, bootstrapping (or restarting) it from the
// demo's cluster, or joining it with join.
func (d *demo) startNode(id uint64, join *raftex.Join) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	initial := d.cluster
	if join != nil {
		initial = nil
	}
	n, err := raftex.StartNode(raftex.Config{
		ID: id, DataDir: filepath.Join(d.dir, node.FormatID(id)), PeerAddr: d.cluster[id],
		InitialCluster: initial, Join: join, Logger: quiet,
		Tune: func(c *node.Config) {
			// Small thresholds so the demo's few hundred writes compact
			// the log past a stopped follower.
			c.SnapshotEntries, c.SnapshotTrailing = 200, 50
		},
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", node.FormatID(id), err)
	}
	d.nodes[id] = n
	sub := n.Raft().Subscribe()
	_, term := n.Raft().Leader()
	d.console.Write(raft.Event{Kind: raft.EventNodeStarted, Node: id, Term: term, Index: n.Raft().AppliedIndex()})
	d.readers.Add(1)
	go func() {
		defer d.readers.Done()
		for e := range sub.C {
			d.seen.Store([2]uint64{e.Node, uint64(e.Kind)}, true)
			if d.bulk.Load() && inspect.CategoryOf(e.Kind)&(inspect.CategoryRPC|inspect.CategoryCommit) != 0 {
				d.hidden.Add(1)
				continue
			}
			d.console.Write(e)
		}
	}()
	return nil
}

func (d *demo) stop(id uint64) {
	if n := d.nodes[id]; n != nil {
		n.Stop()
		delete(d.nodes, id)
	}
}

func (d *demo) stopAll() {
	for _, id := range d.ids {
		d.stop(id)
	}
	d.readers.Wait()
}

func (d *demo) live() []uint64 {
	var ids []uint64
	for _, id := range d.ids {
		if d.nodes[id] != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// leader returns the leader the live nodes agree on, or 0.
func (d *demo) leader() uint64 {
	var lead uint64
	for _, id := range d.live() {
		l, _ := d.nodes[id].Raft().Leader()
		if l == raft.None || (lead != raft.None && l != lead) || d.nodes[l] == nil {
			return raft.None
		}
		lead = l
	}
	if lead != raft.None && d.nodes[lead].Raft().Role() != raft.Leader {
		return raft.None
	}
	return lead
}

func (d *demo) followerOf(lead uint64) uint64 {
	for _, id := range d.live() {
		if id != lead {
			return id
		}
	}
	return raft.None
}

// waitLeader waits until the live nodes agree on a leader other than not.
func (d *demo) waitLeader(ctx context.Context, not uint64) (uint64, uint64, error) {
	var lead, term uint64
	err := waitFor(ctx, func() bool {
		// The leader and its term from one look: asking again could
		// find none, mid-election.
		lead = d.leader()
		if lead == raft.None || lead == not {
			return false
		}
		var l uint64
		l, term = d.nodes[lead].Raft().Leader()
		return l == lead
	})
	if err != nil {
		return 0, 0, fmt.Errorf("no leader elected: %w", err)
	}
	return lead, term, nil
}

// waitPublished waits until every node's address is in the replicated
// store (the first entries after the election).
func (d *demo) waitPublished(ctx context.Context) error {
	err := waitFor(ctx, func() bool {
		for _, id := range d.live() {
			if len(d.nodes[id].KV().Members()) < len(d.ids) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("members did not publish their addresses: %w", err)
	}
	return d.waitConverged(ctx)
}

// waitConverged waits until every live node has the same commit index,
// applied index and state.
func (d *demo) waitConverged(ctx context.Context) error {
	_, err := d.waitAgreed(ctx, false)
	return err
}

// waitAgreed waits until every live node has the same commit index,
// applied index and state, and with sameTerm the same term, and returns
// the rows that showed it.
func (d *demo) waitAgreed(ctx context.Context, sameTerm bool) ([]stateRow, error) {
	var rows []stateRow
	err := waitFor(ctx, func() bool {
		var err error
		if rows, err = d.rows(ctx); err != nil {
			return false
		}
		for _, r := range rows {
			if r.commit != rows[0].commit || r.applied != rows[0].applied || r.hash != rows[0].hash || r.applied != r.commit ||
				(sameTerm && r.term != rows[0].term) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("nodes did not converge: %w", err)
	}
	return rows, nil
}

// bulkWrites writes n keys through the leader from 16 writers, hiding the
// flood of AppendEntries lines, and waits for the leader to snapshot.
func (d *demo) bulkWrites(ctx context.Context, n int) error {
	lead, _, err := d.waitLeader(ctx, 0)
	if err != nil {
		return fmt.Errorf("no leader for the bulk writes: %w", err)
	}
	d.bulk.Store(true)
	d.hidden.Store(0)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var next atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := d.nodes[lead].Set(ctx, fmt.Sprintf("bulk/%04d", i), []byte(fmt.Sprint("value-", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		d.bulk.Store(false)
		return fmt.Errorf("bulk writes: %w", err)
	}
	err = waitFor(ctx, func() bool {
		_, ok := d.seen.Load([2]uint64{lead, uint64(raft.EventSnapshotTaken)})
		return ok
	})
	d.bulk.Store(false)
	d.printf("✔ %d writes in %.2fs (%d replication and commit lines hidden)\n", n, time.Since(start).Seconds(), d.hidden.Load())
	if err != nil {
		return fmt.Errorf("the leader took no snapshot: %w", err)
	}
	first, _, _, _ := d.nodes[lead].Raft().LogTail(0)
	d.printf("✔ %s took a snapshot and compacted its log: it now starts at index %d\n", node.FormatID(lead), first)
	return nil
}

// compactedPast reports whether every live node's log starts after index.
func (d *demo) compactedPast(index uint64) bool {
	for _, id := range d.live() {
		first, _, _, err := d.nodes[id].Raft().LogTail(0)
		if err != nil || first <= index {
			return false
		}
	}
	return true
}

type stateRow struct {
	id                    uint64
	role                  raft.Role
	term, commit, applied uint64
	hash                  uint64
}

func (d *demo) rows(ctx context.Context) ([]stateRow, error) {
	var rows []stateRow
	for _, id := range d.live() {
		n := d.nodes[id]
		st, err := n.Raft().Status(ctx)
		if err != nil {
			return nil, err
		}
		rows = append(rows, stateRow{id: id, role: st.Role, term: st.Term, commit: st.Commit, applied: st.Applied, hash: n.KV().Hash()})
	}
	return rows, nil
}

func (d *demo) finalTable(ctx context.Context) error {
	// The table shows the rows that agreed: read again, they could show
	// a node campaigning in a later term (a loaded machine) whose log
	// agrees all the same.
	rows, err := d.waitAgreed(ctx, true)
	if err != nil {
		return err
	}
	d.mu.Lock()
	tw := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tTERM\tCOMMIT\tAPPLIED\tSTATE HASH")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%016x\n", node.FormatID(r.id), r.role, r.term, r.commit, r.applied, r.hash)
	}
	tw.Flush()
	d.mu.Unlock()
	for _, r := range rows[1:] {
		if r.term != rows[0].term || r.commit != rows[0].commit || r.applied != rows[0].applied || r.hash != rows[0].hash {
			return fmt.Errorf("%s differs from %s", node.FormatID(r.id), node.FormatID(rows[0].id))
		}
	}
	d.printf("✔ all %d nodes agree: term %d, commit %d, applied %d, state %016x\n", len(rows), rows[0].term, rows[0].commit, rows[0].applied, rows[0].hash)
	return nil
}

func (d *demo) heading(format string, args ...any) {
	d.stepNo++
	d.printf("\n━━ Step %d. %s ━━\n", d.stepNo, fmt.Sprintf(format, args...))
}

// pause ends a step: it lets the step's events print, then waits for
// Enter with --step.
func (d *demo) pause() {
	time.Sleep(150 * time.Millisecond)
	if !d.opts.step {
		return
	}
	d.printf("   (press Enter to continue)\n")
	bufio.NewReader(d.opts.in).ReadString('\n')
}

func (d *demo) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

// patience bounds each wait of the scenario: an election, catching up, a
// snapshot. Each takes well under a second on an idle machine, and the
// waits end as soon as their condition holds; the bound is generous for
// a loaded one.
const patience = time.Minute

// waitFor polls cond until it holds, ctx ends or patience passes.
func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// lockedWriter shares one writer between the console and the narration.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

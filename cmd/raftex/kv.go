package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/client"
)

const defaultEndpoints = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"

// Exit codes of the key-value commands, as a shell user expects: 0 done,
// 1 failed, 2 usage (bad flags or arguments, or a key or value the server
// refuses as malformed or too large), 3 not found, 4 CAS mismatch, 5
// cluster unavailable (the outcome of a write is then unknown).
const (
	exitUsage       = 2
	exitNotFound    = 3
	exitCASMismatch = 4
	exitUnavailable = 5
)

type clientFlags struct {
	endpoints string
	timeout   time.Duration
}

func (f *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.endpoints, "endpoints", defaultEndpoints, "comma-separated client addresses of the cluster (a bare port takes the host before it: 127.0.0.1:8001,8002,8003)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
}

func (f *clientFlags) client(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, error) {
	if err := bindEnv(cmd); err != nil {
		return nil, nil, nil, &exitError{2, err}
	}
	if f.timeout <= 0 {
		return nil, nil, nil, &exitError{2, fmt.Errorf("--timeout must be positive, got %s", f.timeout)}
	}
	endpoints, err := parseEndpoints(f.endpoints)
	if err != nil {
		return nil, nil, nil, &exitError{2, err}
	}
	c, err := client.New(endpoints, client.Options{})
	if err != nil {
		return nil, nil, nil, &exitError{2, err}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return c, ctx, func() { cancel(); c.Close() }, nil
}

// parseEndpoints splits a comma-separated list of host:port (or URLs); a
// bare port takes the host of the entry before it (127.0.0.1 first).
func parseEndpoints(s string) ([]string, error) {
	var out []string
	host := "127.0.0.1"
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			continue
		case isPort(e):
			e = net.JoinHostPort(host, e)
		case !strings.Contains(e, "://"):
			h, _, err := net.SplitHostPort(e)
			if err != nil {
				return nil, fmt.Errorf("--endpoints: %q is not host:port: %w", e, err)
			}
			host = h
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--endpoints: no endpoint in %q", s)
	}
	return out, nil
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// clientExit maps client errors to exit codes and says what happened to
// key.
func clientExit(err error, key string) error {
	var mismatch *client.CASMismatchError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrNotFound):
		return &exitError{exitNotFound, fmt.Errorf("key %q not found", key)}
	case errors.As(err, &mismatch) && mismatch.Revision == 0:
		return &exitError{exitCASMismatch, fmt.Errorf("revision mismatch: key %q is absent (revision 0)", key)}
	case errors.As(err, &mismatch):
		return &exitError{exitCASMismatch, fmt.Errorf("revision mismatch: key %q is at revision %d", key, mismatch.Revision)}
	case errors.Is(err, client.ErrUnavailable):
		return &exitError{exitUnavailable, err}
	case errors.Is(err, client.ErrBadRequest), errors.Is(err, client.ErrTooLarge):
		return &exitError{exitUsage, err}
	}
	return err
}

// casOption turns --cas into a write option when given.
func casOption(cmd *cobra.Command, cas int64) ([]client.WriteOption, error) {
	if !cmd.Flags().Changed("cas") {
		return nil, nil
	}
	if cas < 0 {
		return nil, &exitError{exitUsage, fmt.Errorf("--cas must be a revision >= 0, got %d", cas)}
	}
	return []client.WriteOption{client.WithCAS(uint64(cas))}, nil
}

func putCmd() *cobra.Command {
	var f clientFlags
	var cas int64
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set KEY to VALUE (linearizable, exactly-once)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := casOption(cmd, cas)
			if err != nil {
				return err
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			rev, err := c.Put(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return clientExit(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK revision=%d\n", rev)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().Int64Var(&cas, "cas", 0, "write only if the key's revision is this (0: only if absent)")
	return cmd
}

func getCmd() *cobra.Command {
	var f clientFlags
	var consistency string
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch consistency {
			case "linearizable", "lease", "stale":
			default:
				return &exitError{exitUsage, fmt.Errorf("--consistency must be linearizable, lease or stale, got %q", consistency)}
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, rev, err := c.Get(ctx, args[0], client.Consistency(consistency))
			if err != nil {
				return clientExit(err, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
			fmt.Fprintf(cmd.ErrOrStderr(), "revision=%d\n", rev)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&consistency, "consistency", "linearizable", "linearizable, lease or stale")
	return cmd
}

func delCmd() *cobra.Command {
	var f clientFlags
	var cas int64
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete KEY",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := casOption(cmd, cas)
			if err != nil {
				return err
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			deleted, rev, err := c.Delete(ctx, args[0], opts...)
			if err != nil {
				return clientExit(err, args[0])
			}
			if !deleted {
				return clientExit(client.ErrNotFound, args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted revision=%d\n", rev)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().Int64Var(&cas, "cas", 0, "delete only if the key's revision is this")
	return cmd
}

func statusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every member: id, endpoint, role, term, leader, commit, applied and last index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			return printStatus(ctx, cmd, c)
		},
	}
	f.add(cmd)
	return cmd
}

// printStatus asks every endpoint, and every member they report, for its
// status and prints one row per member, in id order: what it answered, or
// "unreachable". It fails (exit 5) when no member answers.
func printStatus(ctx context.Context, cmd *cobra.Command, c *client.Client) error {
	type row struct {
		endpoint string
		st       *client.Status
	}
	rows := map[string]*row{}     // by member id
	byAddr := map[string]string{} // client address → member id, as reported
	var unknown []string          // endpoints that never answered, of no known member
	queue := c.Endpoints()
	asked := map[string]bool{}
	for i := 0; i < len(queue); i++ {
		e := strings.TrimPrefix(queue[i], "http://")
		if asked[e] {
			continue
		}
		asked[e] = true
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := c.Status(sctx, e)
		cancel()
		if err != nil {
			unknown = append(unknown, e)
			continue
		}
		rows[st.ID] = &row{endpoint: e, st: &st}
		for _, m := range st.Members {
			if _, ok := rows[m.ID]; !ok {
				rows[m.ID] = &row{endpoint: m.ClientAddr}
			}
			if m.ClientAddr != "" {
				byAddr[m.ClientAddr] = m.ID
				queue = append(queue, m.ClientAddr)
			}
		}
	}
	reachable := 0
	ids := make([]string, 0, len(rows))
	for id, r := range rows {
		ids = append(ids, id)
		if r.st != nil {
			reachable++
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return memberOrder(a) - memberOrder(b) })
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENDPOINT\tROLE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST")
	for _, id := range ids {
		r := rows[id]
		if r.st == nil {
			fmt.Fprintf(tw, "%s\t%s\tunreachable\t-\t-\t-\t-\t-\n", id, orDash(r.endpoint))
			continue
		}
		st := r.st
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\n", id, r.endpoint, st.Role, st.Term, orDash(st.Leader), st.CommitIndex, st.AppliedIndex, st.LastIndex)
	}
	for _, e := range unknown {
		if _, known := byAddr[e]; !known {
			fmt.Fprintf(tw, "-\t%s\tunreachable\t-\t-\t-\t-\t-\n", e)
		}
	}
	tw.Flush()
	if reachable == 0 {
		return &exitError{exitUnavailable, errors.New("no member reachable")}
	}
	return nil
}

// memberOrder sorts "n2" before "n10".
func memberOrder(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "n"))
	if err != nil {
		return 1 << 30
	}
	return n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

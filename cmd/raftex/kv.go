package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/client"
)

const defaultEndpoints = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"

// Exit codes of the key-value commands, as a shell user expects: 0 done,
// 1 failed, 2 usage, 3 not found, 4 CAS mismatch, 5 cluster unavailable.
const (
	exitNotFound    = 3
	exitCASMismatch = 4
	exitUnavailable = 5
)

type clientFlags struct {
	endpoints string
	timeout   time.Duration
}

func (f *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.endpoints, "endpoints", defaultEndpoints, "comma-separated client addresses of the cluster")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
}

func (f *clientFlags) client(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, error) {
	if err := bindEnv(cmd); err != nil {
		return nil, nil, nil, err
	}
	c, err := client.New(strings.Split(f.endpoints, ","), client.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return c, ctx, cancel, nil
}

// clientExit maps client errors to exit codes.
func clientExit(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrNotFound):
		return &exitError{exitNotFound, err}
	case errors.Is(err, client.ErrCASMismatch):
		return &exitError{exitCASMismatch, err}
	case errors.Is(err, client.ErrUnavailable):
		return &exitError{exitUnavailable, err}
	}
	return err
}

func putCmd() *cobra.Command {
	var f clientFlags
	var cas int64
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set KEY to VALUE (linearizable, exactly-once)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var opts []client.WriteOption
			if cmd.Flags().Changed("cas") {
				if cas < 0 {
					return fmt.Errorf("--cas must be a revision >= 0, got %d", cas)
				}
				opts = append(opts, client.WithCAS(uint64(cas)))
			}
			rev, err := c.Put(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return clientExit(err)
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
				return fmt.Errorf("--consistency must be linearizable, lease or stale, got %q", consistency)
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, rev, err := c.Get(ctx, args[0], client.Consistency(consistency))
			if err != nil {
				return clientExit(err)
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
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var opts []client.WriteOption
			if cmd.Flags().Changed("cas") {
				opts = append(opts, client.WithCAS(uint64(cas)))
			}
			deleted, rev, err := c.Delete(ctx, args[0], opts...)
			if err != nil {
				return clientExit(err)
			}
			if !deleted {
				fmt.Fprintf(cmd.OutOrStdout(), "not found revision=%d\n", rev)
				return &exitError{exitNotFound, client.ErrNotFound}
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
		Short: "Show every member: id, role, term, commit, applied, leader",
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

// printStatus asks every known member (the endpoints, plus members they
// report) and prints one row each.
func printStatus(ctx context.Context, cmd *cobra.Command, c *client.Client) error {
	endpoints := c.Endpoints()
	seen := map[string]bool{}
	for _, e := range endpoints {
		seen[strings.TrimPrefix(e, "http://")] = true
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tID\tROLE\tTERM\tCOMMIT\tAPPLIED\tLEADER")
	reachable := 0
	for i := 0; i < len(endpoints); i++ {
		e := endpoints[i]
		st, err := c.Status(ctx, e)
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\tunreachable\t-\t-\t-\t-\n", strings.TrimPrefix(e, "http://"))
			continue
		}
		reachable++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", strings.TrimPrefix(e, "http://"), st.ID, st.Role, st.Term, st.CommitIndex, st.AppliedIndex, orDash(st.Leader))
		for _, m := range st.Members {
			if m.ClientAddr != "" && !seen[m.ClientAddr] {
				seen[m.ClientAddr] = true
				endpoints = append(endpoints, "http://"+m.ClientAddr)
			}
		}
	}
	tw.Flush()
	if reachable == 0 {
		return &exitError{exitUnavailable, errors.New("no member reachable")}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

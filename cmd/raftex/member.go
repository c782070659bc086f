package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/node"
)

// memberCmd and leaderCmd change the cluster while it runs
// (docs/operations.md). They take the key-value commands' flags and exit
// codes, plus 7 for a conflict; once auth is enabled the changes need a
// user with the root role.
func memberCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "List, add, promote and remove members"}
	var learner bool
	add := memberVerb("add ID PEER_ADDR", "Add a member (it joins as a learner, promoted to voter once caught up unless --learner); start it with serve --join", cobra.ExactArgs(2),
		func(ctx context.Context, c *client.Client, args []string) (client.Members, error) {
			if err := checkID(args[0]); err != nil {
				return client.Members{}, err
			}
			return c.MemberAdd(ctx, args[0], args[1], learner)
		})
	add.Flags().BoolVar(&learner, "learner", false, "keep it a learner (a non-voting member) until member promote")
	cmd.AddCommand(
		memberVerb("list", "List the members: id, peer and client address, role", cobra.NoArgs,
			func(ctx context.Context, c *client.Client, _ []string) (client.Members, error) { return c.Members(ctx) }),
		add,
		memberVerb("promote ID", "Make a learner a voter", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) (client.Members, error) {
				if err := checkID(args[0]); err != nil {
					return client.Members{}, err
				}
				return c.MemberPromote(ctx, args[0])
			}),
		memberVerb("remove ID", "Remove a member (the leader too: it steps down once the change commits)", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) (client.Members, error) {
				if err := checkID(args[0]); err != nil {
					return client.Members{}, err
				}
				return c.MemberRemove(ctx, args[0])
			}),
	)
	return cmd
}

// checkID refuses an id that is not n1, n2, ... (or 1, 2, ...) before
// asking the cluster.
func checkID(id string) error {
	if _, err := node.ParseID(id); err != nil {
		return usageError("%w", err)
	}
	return nil
}

// memberVerb is one member command: it runs do with a client and prints
// the members the answer lists (-o text or json).
func memberVerb(use, short string, args cobra.PositionalArgs, do func(context.Context, *client.Client, []string) (client.Members, error)) *cobra.Command {
	var f clientFlags
	var output *enumFlag
	cmd := &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			m, err := do(ctx, c, args)
			if err != nil {
				return memberExit(err)
			}
			if output.value == outputJSON {
				return printJSON(cmd.OutOrStdout(), m)
			}
			printMembers(cmd.OutOrStdout(), m)
			return nil
		},
	}
	f.add(cmd)
	output = addOutput(cmd, outputText, outputJSON)
	return cmd
}

// printMembers prints the members as a table; ROLE is leader, voter or
// learner.
func printMembers(w io.Writer, m client.Members) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPEER_ADDR\tCLIENT_ADDR\tROLE")
	for _, x := range m.Members {
		role := "learner"
		switch {
		case x.ID == m.Leader:
			role = "leader"
		case x.Voter:
			role = "voter"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.ID, orDash(x.PeerAddr), orDash(x.ClientAddr), role)
	}
	tw.Flush()
}

func leaderCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "leader", Short: "Move leadership"}
	var f clientFlags
	var output *enumFlag
	transfer := &cobra.Command{
		Use:   "transfer [ID]",
		Short: "Hand leadership to ID (default: the most up-to-date follower) and wait until it leads",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to := ""
			if len(args) == 1 {
				if err := checkID(args[0]); err != nil {
					return err
				}
				to = args[0]
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			leader, term, err := c.TransferLeadership(ctx, to)
			if err != nil {
				return memberExit(err)
			}
			if output.value == outputJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"leader": leader, "term": term})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK leader=%s term=%d\n", leader, term)
			return nil
		},
	}
	f.add(transfer)
	output = addOutput(transfer, outputText, outputJSON)
	cmd.AddCommand(transfer)
	return cmd
}

// memberExit maps the errors of a membership call to exit codes: 3 no
// such member, 7 a conflict, and the key-value commands' others.
func memberExit(err error) error {
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee
	case errors.Is(err, client.ErrUnknownMember):
		return &exitError{exitNotFound, err}
	case errors.Is(err, client.ErrConflict):
		return &exitError{exitConflict, err}
	}
	return clientExit(err, "")
}

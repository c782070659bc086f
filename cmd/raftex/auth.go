package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/client"
)

// authCmd, userCmd and roleCmd manage auth (docs/security.md). Each
// takes the key-value commands' flags (--endpoints, --timeout, --user,
// --password) and exit codes; once auth is enabled they need a user with
// the root role.
func authCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "auth", Short: "Turn authentication and authorisation on or off"}
	cmd.AddCommand(
		authVerb("enable", "Turn auth on (a user with the root role must exist)", cobra.NoArgs,
			func(ctx context.Context, c *client.Client, _ []string) (uint64, error) { return c.AuthEnable(ctx) }),
		authVerb("disable", "Turn auth off (users and roles stay)", cobra.NoArgs,
			func(ctx context.Context, c *client.Client, _ []string) (uint64, error) { return c.AuthDisable(ctx) }),
	)
	return cmd
}

func userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Add, delete and grant roles to users"}
	var newPassword string
	add := authVerb("add NAME", "Add a user; the password comes from --new-password or RAFTEX_NEW_PASSWORD, else the first line of stdin", cobra.ExactArgs(1),
		func(ctx context.Context, c *client.Client, args []string) (uint64, error) {
			return c.UserAdd(ctx, args[0], newPassword)
		})
	add.Flags().StringVar(&newPassword, "new-password", "", "the new user's password")
	run := add.RunE
	add.RunE = func(cmd *cobra.Command, args []string) error {
		if newPassword == "" {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			newPassword = strings.TrimRight(line, "\r\n")
			if newPassword == "" {
				return usageError("no password: give --new-password, RAFTEX_NEW_PASSWORD or a line on stdin (%v)", err)
			}
		}
		return run(cmd, args)
	}
	cmd.AddCommand(add,
		authVerb("delete NAME", "Delete a user", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) (uint64, error) {
				return c.UserDelete(ctx, args[0])
			}),
		authVerb("grant NAME ROLE", "Give a user a role (root: the built-in one)", cobra.ExactArgs(2),
			func(ctx context.Context, c *client.Client, args []string) (uint64, error) {
				return c.UserGrant(ctx, args[0], args[1])
			}),
	)
	return cmd
}

func roleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Add roles and grant them access to key prefixes"}
	cmd.AddCommand(
		authVerb("add NAME", "Add a role without permissions", cobra.ExactArgs(1),
			func(ctx context.Context, c *client.Client, args []string) (uint64, error) {
				return c.RoleAdd(ctx, args[0])
			}),
		authVerb("grant ROLE PREFIX read|readwrite", `Give a role access to every key that starts with PREFIX ("" for all keys)`, cobra.ExactArgs(3),
			func(ctx context.Context, c *client.Client, args []string) (uint64, error) {
				if args[2] != "read" && args[2] != "readwrite" {
					return 0, usageError("access %q is not read or readwrite", args[2])
				}
				return c.RoleGrant(ctx, args[0], args[1], args[2])
			}),
	)
	return cmd
}

// authVerb is one auth command: it runs do with a client and prints the
// change's revision as put does (-o text, json or revision).
func authVerb(use, short string, args cobra.PositionalArgs, do func(context.Context, *client.Client, []string) (uint64, error)) *cobra.Command {
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
			rev, err := do(ctx, c, args)
			var ee *exitError
			if errors.As(err, &ee) {
				return ee
			}
			if err != nil {
				return clientExit(err, "")
			}
			out := cmd.OutOrStdout()
			switch output.value {
			case outputJSON:
				return printJSON(out, map[string]uint64{"revision": rev})
			case outputRevision:
				fmt.Fprintln(out, rev)
			default:
				fmt.Fprintf(out, "OK revision=%d\n", rev)
			}
			return nil
		},
	}
	f.add(cmd)
	output = addOutput(cmd, outputText, outputJSON, outputRevision)
	return cmd
}

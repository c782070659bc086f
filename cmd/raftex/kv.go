package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/client"
	"github.com/raftex/raftex/kvapi"
)

const defaultEndpoints = "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003"

type clientFlags struct {
	endpoints         string
	timeout           time.Duration
	user, password    string
	cacert, cert, key string
}

func (f *clientFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.endpoints, "endpoints", defaultEndpoints, "comma-separated client addresses of the cluster (a bare port takes the host before it: 127.0.0.1:8001,8002,8003)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
	cmd.Flags().StringVar(&f.user, "user", "", "log in as this user (when the cluster has auth enabled)")
	cmd.Flags().StringVar(&f.password, "password", "", "the user's password (prefer RAFTEX_PASSWORD: a flag shows in the process list)")
	cmd.Flags().StringVar(&f.cacert, "cacert", "", "speak https, verifying the nodes with this CA (raftex certs: ca.crt)")
	cmd.Flags().StringVar(&f.cert, "cert", "", "speak https with this client certificate (its common name names the user)")
	cmd.Flags().StringVar(&f.key, "key", "", "key of --cert")
}

// options are the client options the flags give; a bad TLS flag is a
// usage error.
func (f *clientFlags) options() (client.Options, error) {
	opts := client.Options{Username: f.user, Password: f.password}
	var err error
	if opts.TLS, err = clientTLS(f.cacert, f.cert, f.key); err != nil {
		return opts, &exitError{exitUsage, err}
	}
	return opts, nil
}

// clientTLS is the TLS configuration of --cacert, --cert and --key: nil
// when none is given (http), else https verified with the CA (or the
// system's) and presenting the certificate if there is one.
func clientTLS(cacert, cert, key string) (*tls.Config, error) {
	if cacert == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert: %s holds no PEM certificate", cacert)
		}
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cert, --key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func (f *clientFlags) client(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, error) {
	if f.timeout <= 0 {
		return nil, nil, nil, usageError("--timeout must be positive, got %s", f.timeout)
	}
	endpoints, err := parseEndpoints(f.endpoints)
	if err != nil {
		return nil, nil, nil, &exitError{exitUsage, err}
	}
	if f.password != "" && f.user == "" {
		return nil, nil, nil, &exitError{2, errors.New("--password needs --user")}
	}
	opts, err := f.options()
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := client.New(endpoints, opts)
	if err != nil {
		return nil, nil, nil, &exitError{exitUsage, err}
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

// Output formats of -o/--output: text for people, json for programs,
// revision for shell scripts (rev=$(raftex put k v -o revision)).
const (
	outputText     = "text"
	outputJSON     = "json"
	outputRevision = "revision"
)

// addOutput adds -o/--output to cmd, taking formats (text first, the
// default).
func addOutput(cmd *cobra.Command, formats ...string) *enumFlag {
	o := newEnum(formats[0], formats...)
	cmd.Flags().VarP(o, "output", "o", "output format: "+orList(formats))
	return o
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// clientExit maps client errors to exit codes and says what happened to
// key.
func clientExit(err error, key string) error {
	var mismatch *kvapi.CASMismatchError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kvapi.ErrNotFound):
		return &exitError{exitNotFound, fmt.Errorf("key %q not found", key)}
	case errors.As(err, &mismatch) && mismatch.Revision == 0:
		return &exitError{exitCASMismatch, fmt.Errorf("revision mismatch: key %q is absent (revision 0)", key)}
	case errors.As(err, &mismatch):
		return &exitError{exitCASMismatch, fmt.Errorf("revision mismatch: key %q is at revision %d", key, mismatch.Revision)}
	case errors.Is(err, client.ErrUnavailable):
		return &exitError{exitUnavailable, err}
	case errors.Is(err, client.ErrBadRequest), errors.Is(err, client.ErrTooLarge):
		return &exitError{exitUsage, err}
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		return &exitError{exitDenied, err}
	}
	return err
}

// casFlag is --cas: a revision, and whether one was given (on the command
// line or as RAFTEX_CAS).
type casFlag struct {
	cmd *cobra.Command
	rev int64
}

func addCAS(cmd *cobra.Command, usage string) *casFlag {
	c := &casFlag{cmd: cmd}
	cmd.Flags().Int64Var(&c.rev, "cas", 0, usage)
	return c
}

// options turns --cas into a write option when given.
func (c *casFlag) options() ([]kvapi.WriteOption, error) {
	if !c.cmd.Flags().Changed("cas") {
		return nil, nil
	}
	if c.rev < 0 {
		return nil, usageError("--cas must be a revision >= 0, got %d", c.rev)
	}
	return []kvapi.WriteOption{kvapi.WithCAS(uint64(c.rev))}, nil
}

func putCmd() *cobra.Command {
	var f clientFlags
	var cas *casFlag
	var output *enumFlag
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set KEY to VALUE (linearizable, exactly-once)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := cas.options()
			if err != nil {
				return err
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			rev, err := c.Set(ctx, args[0], []byte(args[1]), opts...)
			if err != nil {
				return clientExit(err, args[0])
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
	cas = addCAS(cmd, "write only if the key's revision is this (0: only if absent)")
	output = addOutput(cmd, outputText, outputJSON, outputRevision)
	return cmd
}

func getCmd() *cobra.Command {
	var f clientFlags
	consistency := newEnum("linearizable", "linearizable", "lease", "stale")
	var output *enumFlag
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of KEY (its revision on stderr)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			v, rev, err := c.Get(ctx, args[0], kvapi.WithConsistency(kvapi.Consistency(consistency.value)))
			if err != nil {
				return clientExit(err, args[0])
			}
			out := cmd.OutOrStdout()
			switch output.value {
			case outputJSON:
				return printJSON(out, struct {
					Key      string `json:"key"`
					Value    string `json:"value"`
					Revision uint64 `json:"revision"`
				}{args[0], string(v), rev})
			case outputRevision:
				fmt.Fprintln(out, rev)
			default:
				fmt.Fprintf(out, "%s\n", v)
				fmt.Fprintf(cmd.ErrOrStderr(), "revision=%d\n", rev)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().Var(consistency, "consistency", "linearizable, lease or stale")
	output = addOutput(cmd, outputText, outputJSON, outputRevision)
	return cmd
}

func delCmd() *cobra.Command {
	var f clientFlags
	var cas *casFlag
	var prefix, all bool
	var output *enumFlag
	cmd := &cobra.Command{
		Use:   "del [KEY]",
		Short: "Delete KEY; with --prefix every key under it, with --all every key, as one revision",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Checked here, once the environment is bound (RAFTEX_ALL).
			switch {
			case all && (prefix || len(args) != 0 || cmd.Flags().Changed("cas")):
				return usageError("--all takes no KEY, --prefix or --cas (usage: %s)", cmd.UseLine())
			case prefix && cmd.Flags().Changed("cas"):
				return usageError("--prefix takes no --cas (usage: %s)", cmd.UseLine())
			case prefix && (len(args) == 0 || args[0] == ""):
				return usageError("an empty prefix deletes every key: say --all (usage: %s)", cmd.UseLine())
			case !all && len(args) == 0:
				return usageError("del needs a KEY (usage: %s)", cmd.UseLine())
			}
			if all || prefix {
				p := ""
				if len(args) == 1 {
					p = args[0]
				}
				return delPrefix(cmd, &f, output, p, all)
			}
			opts, err := cas.options()
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
				return clientExit(kvapi.ErrNotFound, args[0])
			}
			out := cmd.OutOrStdout()
			switch output.value {
			case outputJSON:
				return printJSON(out, map[string]any{"deleted": true, "revision": rev})
			case outputRevision:
				fmt.Fprintln(out, rev)
			default:
				fmt.Fprintf(out, "deleted revision=%d\n", rev)
			}
			return nil
		},
	}
	f.add(cmd)
	cas = addCAS(cmd, "delete only if the key's revision is this")
	cmd.Flags().BoolVar(&prefix, "prefix", false, "delete every key that starts with the argument, as one revision (-o json: the count)")
	cmd.Flags().BoolVar(&all, "all", false, "delete every key, as one revision")
	output = addOutput(cmd, outputText, outputJSON, outputRevision)
	return cmd
}

func statusCmd() *cobra.Command {
	var f clientFlags
	var output *enumFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every member: id, endpoint, role, term, leader, commit, applied and last index (exit 5 when no leader is known)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			rows, err := collectStatus(ctx, c)
			if err != nil {
				return err
			}
			if output.value == outputJSON {
				if err := printJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
			} else {
				printStatus(cmd.OutOrStdout(), rows)
			}
			return rows.verdict()
		},
	}
	f.add(cmd)
	output = addOutput(cmd, outputText, outputJSON)
	return cmd
}

// statusRow is one member (or an endpoint of no known member) as status
// shows it. Reachable is false, and the rest empty, when it did not answer.
type statusRow struct {
	ID        string `json:"id"` // "" for an endpoint of no known member
	Endpoint  string `json:"endpoint"`
	Reachable bool   `json:"reachable"`
	Role      string `json:"role,omitempty"`
	Term      uint64 `json:"term,omitempty"`
	Leader    string `json:"leader,omitempty"`
	Commit    uint64 `json:"commit_index,omitempty"`
	Applied   uint64 `json:"applied_index,omitempty"`
	Last      uint64 `json:"last_index,omitempty"`
}

type statusRows []statusRow

// collectStatus asks every endpoint, and every member they report, for its
// status: one row per member in id order, then the endpoints that did not
// answer and belong to no known member. A cluster with auth enabled that
// refuses the credentials fails it (exit 6), rather than showing every
// member unreachable.
func collectStatus(ctx context.Context, c *client.Client) (statusRows, error) {
	rows := map[string]*statusRow{} // by member id
	byAddr := map[string]string{}   // client address → member id, as reported
	var unknown []string            // endpoints that never answered
	queue := c.Endpoints()
	asked := map[string]bool{}
	for i := 0; i < len(queue); i++ {
		e := strings.TrimPrefix(strings.TrimPrefix(queue[i], "http://"), "https://")
		if asked[e] {
			continue
		}
		asked[e] = true
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := c.Status(sctx, e)
		cancel()
		if errors.Is(err, client.ErrUnauthorized) || errors.Is(err, client.ErrForbidden) {
			return nil, clientExit(err, "")
		}
		if err != nil {
			unknown = append(unknown, e)
			continue
		}
		rows[st.ID] = &statusRow{ID: st.ID, Endpoint: e, Reachable: true, Role: st.Role, Term: st.Term,
			Leader: st.Leader, Commit: st.CommitIndex, Applied: st.AppliedIndex, Last: st.LastIndex}
		for _, m := range st.Members {
			if _, ok := rows[m.ID]; !ok {
				rows[m.ID] = &statusRow{ID: m.ID, Endpoint: m.ClientAddr}
			}
			if m.ClientAddr != "" {
				byAddr[m.ClientAddr] = m.ID
				queue = append(queue, m.ClientAddr)
			}
		}
	}
	out := make(statusRows, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b statusRow) int { return memberOrder(a.ID) - memberOrder(b.ID) })
	for _, e := range unknown {
		if _, known := byAddr[e]; !known {
			out = append(out, statusRow{Endpoint: e})
		}
	}
	return out, nil
}

// printStatus prints rows as a table.
func printStatus(w io.Writer, rows statusRows) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENDPOINT\tROLE\tTERM\tLEADER\tCOMMIT\tAPPLIED\tLAST")
	for _, r := range rows {
		if !r.Reachable {
			fmt.Fprintf(tw, "%s\t%s\tunreachable\t-\t-\t-\t-\t-\n", orDash(r.ID), orDash(r.Endpoint))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\n", r.ID, r.Endpoint, r.Role, r.Term, orDash(r.Leader), r.Commit, r.Applied, r.Last)
	}
	tw.Flush()
}

// verdict is status's exit: 5 when no member answered, or when none that
// answered leads (writes and linearizable reads are then unavailable).
func (rows statusRows) verdict() error {
	reachable := 0
	for _, r := range rows {
		if !r.Reachable {
			continue
		}
		reachable++
		if r.Role == "leader" {
			return nil
		}
	}
	if reachable == 0 {
		return &exitError{exitUnavailable, errors.New("no member reachable")}
	}
	return &exitError{exitUnavailable, errors.New("no leader known: writes and linearizable reads are unavailable")}
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

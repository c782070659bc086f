package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/kvapi"
)

// showKey prints a key for people: as is when it is printable UTF-8,
// quoted otherwise.
func showKey(k []byte) string {
	s := string(k)
	if utf8.ValidString(s) && strconv.Quote(s) == `"`+s+`"` {
		return s
	}
	return strconv.Quote(s)
}

func lsCmd() *cobra.Command {
	var f clientFlags
	consistency := newEnum("linearizable", "linearizable", "lease", "stale")
	var keysOnly bool
	var limit int
	var output *enumFlag
	cmd := &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List the keys under PREFIX in key order, with their values and revisions (every key without PREFIX)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return usageError("--limit must be >= 0, got %d", limit)
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			// Page through it all (or up to --limit keys).
			all := kvapi.ListResult{KVs: []kvapi.KeyValue{}}
			o := kvapi.ListOptions{KeysOnly: keysOnly, Consistency: kvapi.Consistency(consistency.value)}
			for first := true; ; first = false {
				o.Limit = kvapi.MaxListLimit
				if limit > 0 {
					o.Limit = min(o.Limit, limit-len(all.KVs))
				}
				page, err := c.List(ctx, prefix, o)
				if err != nil {
					return clientExit(err, prefix)
				}
				if first {
					all.Revision = page.Revision
				}
				all.KVs = append(all.KVs, page.KVs...)
				all.More = page.More
				if !page.More || (limit > 0 && len(all.KVs) >= limit) {
					break
				}
				o.StartAfter = page.KVs[len(page.KVs)-1].Key
			}
			out := cmd.OutOrStdout()
			switch output.value {
			case outputJSON:
				return printJSON(out, all)
			case outputRevision:
				fmt.Fprintln(out, all.Revision)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, kv := range all.KVs {
				if keysOnly {
					fmt.Fprintln(tw, showKey(kv.Key))
				} else {
					fmt.Fprintf(tw, "%s\t%s\t%d\n", showKey(kv.Key), showKey(kv.Value), kv.Revision)
				}
			}
			tw.Flush()
			more := ""
			if all.More {
				more = " (more: raise --limit)"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d keys at revision=%d%s\n", len(all.KVs), all.Revision, more)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().Var(consistency, "consistency", "linearizable, lease or stale")
	cmd.Flags().BoolVar(&keysOnly, "keys-only", false, "list the keys without their values")
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many keys (0: all, page by page)")
	output = addOutput(cmd, outputText, outputJSON, outputRevision)
	return cmd
}

// delPrefix is del --prefix and del --all.
func delPrefix(cmd *cobra.Command, f *clientFlags, output *enumFlag, prefix string, all bool) error {
	c, ctx, cancel, err := f.client(cmd)
	if err != nil {
		return err
	}
	defer cancel()
	n, rev, err := c.DeletePrefix(ctx, prefix, all)
	if err != nil {
		return clientExit(err, prefix)
	}
	out := cmd.OutOrStdout()
	switch output.value {
	case outputJSON:
		return printJSON(out, map[string]uint64{"deleted": n, "revision": rev})
	case outputRevision:
		fmt.Fprintln(out, rev)
	default:
		fmt.Fprintf(out, "deleted %d revision=%d\n", n, rev)
	}
	return nil
}

func txnCmd() *cobra.Command {
	var f clientFlags
	var output *enumFlag
	cmd := &cobra.Command{
		Use:   "txn",
		Short: "Run a transaction read as JSON from stdin (POST /v1/txn's body): compares, then the success or the failure ops, atomically",
		Long: `Run a transaction read as JSON from stdin, the body of POST /v1/txn (docs/api.md):

  {"compare":[{"key":"k","revision":5} | {"key":"k","value":"<base64>"} | {"key":"k","exists":false}],
   "success":[{"op":"put","key":"k","value":"<base64>"} | {"op":"delete","key":"k"} | {"op":"get","key":"k"}],
   "failure":[...]}

If every compare holds the success ops run, else the failure ops, as one
revision, exactly once. A compare that fails is no error (exit 0): the
output says FAILURE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dec := json.NewDecoder(io.LimitReader(cmd.InOrStdin(), 64<<20))
			dec.DisallowUnknownFields()
			var t kvapi.Txn
			if err := dec.Decode(&t); err != nil {
				return usageError("reading the transaction from stdin: %v", err)
			}
			c, ctx, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.Txn(ctx, t)
			if err != nil {
				return clientExit(err, "")
			}
			out := cmd.OutOrStdout()
			switch output.value {
			case outputJSON:
				return printJSON(out, resp)
			case outputRevision:
				fmt.Fprintln(out, resp.Revision)
				return nil
			}
			verdict, ops := "SUCCESS", t.Success
			if !resp.Succeeded {
				verdict, ops = "FAILURE", t.Failure
			}
			fmt.Fprintf(out, "%s revision=%d\n", verdict, resp.Revision)
			for i, r := range resp.Results {
				key := ""
				if i < len(ops) {
					key = showKey(ops[i].Key)
				}
				switch r.Kind {
				case kvapi.OpPut:
					fmt.Fprintf(out, "put %s revision=%d\n", key, r.Revision)
				case kvapi.OpDelete:
					fmt.Fprintf(out, "delete %s deleted=%t\n", key, r.Deleted)
				case kvapi.OpGet:
					if r.Found {
						fmt.Fprintf(out, "get %s = %s revision=%d\n", key, showKey(r.Value), r.Revision)
					} else {
						fmt.Fprintf(out, "get %s not found\n", key)
					}
				}
			}
			return nil
		},
	}
	f.add(cmd)
	output = addOutput(cmd, outputText, outputJSON, outputRevision)
	return cmd
}

func watchCmd() *cobra.Command {
	var f clientFlags
	var from int64
	var output *enumFlag
	cmd := &cobra.Command{
		Use:   "watch [PREFIX]",
		Short: "Print every change of the keys under PREFIX as it commits, until interrupted (reconnecting by itself)",
		Long: `Print every change of the keys under PREFIX as it commits, one revision at a
time, in order, until interrupted; --timeout is ignored. The watch moves to
another endpoint when its node fails and resumes after the last revision it
printed. When the cluster no longer holds the changes it needs, it prints
the whole prefix (RESET, then one put per key) and goes on from there.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from < 0 {
				return usageError("--from-revision must be >= 0, got %d", from)
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			c, _, cancel, err := f.client(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			out := cmd.OutOrStdout()
			for ev := range c.Watch(ctx, prefix, uint64(from)) {
				if ev.Err != nil {
					return clientExit(ev.Err, prefix)
				}
				if err := printEvent(out, output.value, ev); err != nil {
					return err
				}
			}
			if err := cmd.Context().Err(); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().Int64Var(&from, "from-revision", 0, "start at this revision (0: from now)")
	output = addOutput(cmd, outputText, outputJSON)
	return cmd
}

// printEvent prints one watch event: text lines for people, or one JSON
// object per line.
func printEvent(w io.Writer, format string, ev kvapi.Event) error {
	if format == outputJSON {
		return printJSON(w, struct {
			Revision uint64         `json:"revision"`
			Reset    bool           `json:"reset,omitempty"`
			Changes  []kvapi.Change `json:"changes"`
		}{ev.Revision, ev.Reset, ev.Changes})
	}
	if ev.Reset {
		fmt.Fprintf(w, "RESET revision=%d keys=%d\n", ev.Revision, len(ev.Changes))
	}
	for _, c := range ev.Changes {
		if c.Type == kvapi.ChangeDelete {
			fmt.Fprintf(w, "DELETE %s revision=%d\n", showKey(c.Key), ev.Revision)
		} else {
			fmt.Fprintf(w, "PUT %s = %s revision=%d\n", showKey(c.Key), showKey(c.Value), ev.Revision)
		}
	}
	return nil
}

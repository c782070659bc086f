// Command raftex is the one binary of raftex: a cluster node (serve), a
// local cluster (cluster), the narrated demo (demo), a key-value CLI (put,
// get, del, status), operator tools (wal dump), a load generator (bench)
// and the simulator's long campaigns (sim).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitError carries a process exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := &cobra.Command{
		Use:           "raftex",
		Short:         "raftex: Raft consensus and a replicated key-value store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), clusterCmd(), demoCmd(), putCmd(), getCmd(), delCmd(), statusCmd(),
		walCmd(), benchCmd(), simCmd())
	usageExits(root)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "raftex:", err)
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if strings.HasPrefix(err.Error(), "unknown command ") {
			code = 2 // cobra's, for the root command
		}
		os.Exit(code)
	}
}

// bindEnv lets every flag of cmd be set as RAFTEX_<FLAG> (dashes become
// underscores); a flag given on the command line wins.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		name := "RAFTEX_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && !f.Changed && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

// usageExits makes every usage error of cmd and its subcommands (a bad
// flag, a wrong number of arguments) exit 2, as a shell user expects, and
// name the usage line.
func usageExits(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{2, fmt.Errorf("%w (usage: %s)", err, c.UseLine())}
	})
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return &exitError{2, fmt.Errorf("%w (usage: %s)", err, c.UseLine())}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		usageExits(sub)
	}
}

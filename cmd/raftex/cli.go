package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The conventions every raftex command follows (docs/api.md, "The command
// line"). A new command gets them all by being added to newRoot's list:
//
//   - Every flag is also the environment variable RAFTEX_<FLAG> (dashes
//     become underscores), bound before the command runs, so a variable is
//     parsed and checked exactly as its flag is; a flag on the command line
//     wins. --help names each flag's variable.
//   - Flags whose value must be one of a few words are enumFlag, so a bad
//     word is refused by the flag parser (or bindEnv), naming the choices.
//   - Required flags are marked with requireFlags; a command run without
//     them lists every one that is missing.
//   - Results go to stdout, nothing else; messages go to stderr, prefixed
//     once with "raftex: ". A command fails by returning an error:
//     usageError (exit 2) for a bad flag or argument, exitError with one of
//     the exit codes below for the rest, any other error exits 1.
//   - Commands that print a result take -o/--output (text, json, and
//     where it makes sense revision): see outputFlag.

// Exit codes, as a shell user expects: 0 done, 1 failed, 2 usage (bad flags
// or arguments, or a key or value the server refuses as malformed or too
// large), 3 not found, 4 CAS mismatch, 5 cluster unavailable (the outcome of
// a write is then unknown; for status: no leader known), 6 not
// authenticated or not permitted (auth enabled), 7 conflict (a membership
// change is pending, an id or address is taken, a leadership transfer
// aborted).
const (
	exitFailed      = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitCASMismatch = 4
	exitUnavailable = 5
	exitDenied      = 6
	exitConflict    = 7
)

// exitError carries a process exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is an exit-2 error: a bad flag, variable or argument.
func usageError(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// envPrefix starts the environment variable of every flag.
const envPrefix = "RAFTEX_"

// annotationRequired marks a flag requireFlags made required.
const annotationRequired = "raftex_required"

// newRoot returns the raftex command with every subcommand, the
// conventions above applied to each.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "raftex",
		Short:         "raftex: Raft consensus and a replicated key-value store",
		Version:       buildVersion().short(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runs before every subcommand: the environment first, so that
		// what follows sees flags and variables alike.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return &exitError{exitUsage, err}
			}
			return checkRequired(cmd)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(serveCmd(), clusterCmd(), demoCmd(), putCmd(), getCmd(), delCmd(), lsCmd(), watchCmd(), txnCmd(), statusCmd(),
		healthCmd(), walCmd(), benchCmd(), simCmd(), versionCmd(), authCmd(), userCmd(), roleCmd(),
		memberCmd(), leaderCmd(), certsCmd())
	applyConventions(root)
	return root
}

// run executes raftex with args, reading stdin (txn) and printing to
// stdout and stderr, and returns the process's exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, message(err))
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case strings.HasPrefix(err.Error(), "unknown command "):
		return exitUsage // cobra's, for the root command
	}
	return exitFailed
}

// message is how err is shown: prefixed once with "raftex: " (errors of
// package raftex carry the prefix already).
func message(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "raftex: ") {
		return msg
	}
	return "raftex: " + msg
}

// applyConventions makes every usage error of cmd and its subcommands exit
// 2 naming the usage line, and shows each flag's variable in --help.
func applyConventions(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{exitUsage, fmt.Errorf("%w (usage: %s)", err, c.UseLine())}
	})
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return &exitError{exitUsage, fmt.Errorf("%w (usage: %s)", err, c.UseLine())}
			}
			return nil
		}
	}
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		note := "env " + envName(f)
		if isRequired(f) {
			note = "required; " + note
		}
		f.Usage += " [" + note + "]"
	})
	for _, sub := range cmd.Commands() {
		applyConventions(sub)
	}
}

// envName is the environment variable of flag f: RAFTEX_DATA_DIR for
// --data-dir.
func envName(f *pflag.Flag) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// bindEnv sets every flag of cmd not given on the command line from its
// variable, through the flag's own parser: a variable is checked exactly as
// its flag is, and counts as given (Flags().Changed).
func bindEnv(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		if v, ok := os.LookupEnv(envName(f)); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f), v, err))
			}
			f.Changed = true
		}
	})
	return errors.Join(errs...)
}

// requireFlags marks flags of cmd as required: checkRequired refuses to
// run cmd without them, and --help says so.
func requireFlags(cmd *cobra.Command, names ...string) {
	for _, name := range names {
		if err := cmd.Flags().SetAnnotation(name, annotationRequired, []string{"true"}); err != nil {
			panic(err) // a typo in a flag name: a programming error
		}
	}
}

func isRequired(f *pflag.Flag) bool { return len(f.Annotations[annotationRequired]) > 0 }

// checkRequired fails with a usage error that lists every required flag
// of cmd neither given nor set in the environment.
func checkRequired(cmd *cobra.Command) error {
	var missing, vars []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if isRequired(f) && !f.Changed {
			missing = append(missing, "--"+f.Name)
			vars = append(vars, envName(f))
		}
	})
	if len(missing) == 0 {
		return nil
	}
	return usageError("missing required flags %s (or variables %s); see %s --help",
		strings.Join(missing, ", "), strings.Join(vars, ", "), cmd.CommandPath())
}

// enumFlag is a string flag that takes one of a few words; any other is
// refused when parsed, from the command line or the environment alike.
type enumFlag struct {
	value   string
	choices []string
}

func newEnum(def string, choices ...string) *enumFlag {
	return &enumFlag{value: def, choices: choices}
}

func (e *enumFlag) String() string { return e.value }
func (e *enumFlag) Type() string   { return "string" }
func (e *enumFlag) Set(s string) error {
	if !slices.Contains(e.choices, s) {
		return fmt.Errorf("must be %s, got %q", orList(e.choices), s)
	}
	e.value = s
	return nil
}

// orList renders "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// version is what the binary knows of its build (runtime/debug build
// info): the module version ("(devel)" for a build from a source tree), the
// commit it was built from and whether the tree had changes, and the Go
// release.
type version struct {
	module, commit, goVersion string
	modified                  bool
}

// commit is the build's commit when the build info has none (a build
// outside a git checkout, a git worktree, or with -buildvcs=false): set it
// with -ldflags "-X main.commit=<hash>", as deploy/build-image does.
var commit = "unknown"

func buildVersion() version {
	v := version{module: "unknown", commit: commit, goVersion: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.goVersion = info.GoVersion
	if info.Main.Version != "" {
		v.module = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.commit = s.Value
		case "vcs.modified":
			v.modified = s.Value == "true"
		}
	}
	return v
}

func (v version) short() string {
	commit := v.commit
	if v.modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("raftex %s\ncommit %s\ngo %s", v.module, commit, v.goVersion)
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the Go release of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), buildVersion().short())
			return nil
		},
	}
}

package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

func walCmd() *cobra.Command {
	wal := &cobra.Command{Use: "wal", Short: "Inspect a node's write-ahead log"}
	wal.AddCommand(&cobra.Command{
		Use:   "dump DIR",
		Short: "Print segments, records, indexes, terms and any corrupt or torn record (DIR: a --data-dir or its raft/ directory)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if st, err := os.Stat(filepath.Join(dir, "raft")); err == nil && st.IsDir() {
				dir = filepath.Join(dir, "raft")
			}
			return storage.Dump(vfs.OS(), dir, cmd.OutOrStdout())
		},
	})
	return wal
}

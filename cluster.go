package raftex

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/raftex/raftex/node"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

// clusterFile records, in DataDir, the cluster a node belongs to: its id
// (checked in every peer handshake) and the initial members' peer
// addresses. It is written once, when the node's log was bootstrapped from
// it, so a restart needs no flags to find its peers.
type clusterFile struct {
	ClusterID string            `json:"cluster_id"`
	Members   map[string]string `json:"members"` // id → peer address
}

const clusterFileName = "cluster.json"

func newClusterFile(members map[uint64]string, token string) clusterFile {
	c := clusterFile{Members: map[string]string{}, ClusterID: clusterID(members, token)}
	for id, addr := range members {
		c.Members[strconv.FormatUint(id, 10)] = addr
	}
	return c
}

func (c clusterFile) members() map[uint64]string {
	out := make(map[uint64]string, len(c.Members))
	for k, addr := range c.Members {
		id, _ := strconv.ParseUint(k, 10, 64)
		out[id] = addr
	}
	return out
}

func (c clusterFile) ids() []uint64 {
	var ids []uint64
	for id := range c.members() {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// String is the cluster as --initial-cluster spells it.
func (c clusterFile) String() string { return formatCluster(c.members()) }

func formatCluster(members map[uint64]string) string {
	var parts []string
	for id, addr := range members {
		parts = append(parts, node.FormatID(id)+"="+addr)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// chooseCluster picks the cluster a node starts in, from DataDir's cluster
// file and cfg.InitialCluster; save reports a cluster the file does not
// hold yet, to record once the log is bootstrapped from it.
//
//   - The file wins once the log holds state: the node belongs to that
//     cluster. A different InitialCluster is logged (WARN) and ignored.
//   - A file beside a log without state comes from a start that failed
//     before bootstrapping (older versions wrote it first): a different
//     InitialCluster replaces it, with a WARN.
//   - Without a file, InitialCluster bootstraps a new node; a log that has
//     state already (a crash between its bootstrap and the file's write)
//     must have been bootstrapped with the same members.
func chooseCluster(cfg Config, store *storage.Store, log *slog.Logger) (c clusterFile, save bool, err error) {
	path := filepath.Join(cfg.DataDir, clusterFileName)
	stored, found, err := readClusterFile(path)
	if err != nil {
		return c, false, err
	}
	given := cfg.InitialCluster
	differs := found && len(given) > 0 && !maps.Equal(stored.members(), given)
	switch {
	case differs && store.HasState():
		log.Warn("the initial cluster given differs from the data dir's; the data dir's wins (its log belongs to it)",
			"stored", stored.String(), "given", formatCluster(given), "file", path)
		c = stored
	case differs:
		log.Warn("replacing the data dir's cluster file, from a start that never bootstrapped the log, with the initial cluster given",
			"stored", stored.String(), "given", formatCluster(given), "file", path)
		c, save = newClusterFile(given, cfg.InitialClusterToken), true
	case found:
		c = stored
	case len(given) == 0:
		return c, false, fmt.Errorf("raftex: %s holds no cluster yet: give the initial cluster (id=host:port,...)", cfg.DataDir)
	default:
		c, save = newClusterFile(given, cfg.InitialClusterToken), true
		if store.HasState() {
			_, m, err := store.InitialState()
			if err != nil {
				return c, false, err
			}
			if !slices.Equal(m.Voters, c.ids()) {
				return c, false, fmt.Errorf("raftex: the log in %s was bootstrapped with members %v, the initial cluster given has %v", cfg.DataDir, m.Voters, c.ids())
			}
		}
	}
	if _, ok := c.members()[cfg.ID]; !ok {
		if found && !save {
			return c, false, fmt.Errorf("raftex: %s belongs to a cluster without node %s", path, node.FormatID(cfg.ID))
		}
		return c, false, fmt.Errorf("raftex: the initial cluster does not include this node %s", node.FormatID(cfg.ID))
	}
	return c, save, nil
}

// readClusterFile reads the cluster file at path; found is false when
// there is none.
func readClusterFile(path string) (c clusterFile, found bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, false, nil
	case err != nil:
		return c, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, false, fmt.Errorf("raftex: %s is damaged: %w", path, err)
	}
	if len(c.Members) == 0 {
		return c, false, fmt.Errorf("raftex: %s is damaged: it lists no members", path)
	}
	return c, true, nil
}

// saveClusterFile writes the cluster file durably: a temporary file
// synced, renamed over, and the directory synced.
func saveClusterFile(dir string, c clusterFile) error {
	path := filepath.Join(dir, clusterFileName)
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("raftex: writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("raftex: writing %s: %w", path, err)
	}
	return vfs.OS().SyncDir(dir)
}

// clusterID names a cluster after its initial members and token (like
// etcd's --initial-cluster-token), so nodes of two clusters started with
// different member lists, or the same list and different tokens, refuse
// each other. Without a token the id is the members' alone, as before
// tokens existed.
func clusterID(members map[uint64]string, token string) string {
	var parts []string
	for id, addr := range members {
		parts = append(parts, fmt.Sprintf("%d=%s", id, addr))
	}
	slices.Sort(parts)
	h := fnv.New64a()
	h.Write([]byte(strings.Join(parts, ",")))
	if token != "" {
		h.Write([]byte("\x00token=" + token))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ParseInitialCluster parses "n1=host:port,n2=host:port,..." (ids as n1
// or 1).
func ParseInitialCluster(s string) (map[uint64]string, error) {
	out := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("raftex: initial cluster entry %q is not id=host:port", part)
		}
		id, err := node.ParseID(name)
		if err != nil {
			return nil, err
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("raftex: node %s appears twice in the initial cluster", node.FormatID(id))
		}
		out[id] = addr
	}
	if len(out) == 0 {
		return nil, errors.New("raftex: the initial cluster is empty")
	}
	return out, nil
}

package raftex

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/raftex/raftex/node"
)

// clusterFile records, in DataDir, the cluster a node belongs to: its id
// (checked in every peer handshake) and the initial members' peer
// addresses. It is written once, when the node bootstraps, so a restart
// needs no flags to find its peers.
type clusterFile struct {
	ClusterID string            `json:"cluster_id"`
	Members   map[string]string `json:"members"` // id → peer address
}

const clusterFileName = "cluster.json"

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

// loadOrCreateClusterFile reads DataDir's cluster file, or creates it from
// cfg.InitialCluster for a new node.
func loadOrCreateClusterFile(cfg Config) (clusterFile, error) {
	path := filepath.Join(cfg.DataDir, clusterFileName)
	var c clusterFile
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("raftex: %s is damaged: %w", path, err)
		}
		if _, ok := c.members()[cfg.ID]; !ok {
			return c, fmt.Errorf("raftex: %s belongs to a cluster without node %s", path, node.FormatID(cfg.ID))
		}
		return c, nil
	case !errors.Is(err, fs.ErrNotExist):
		return c, err
	}
	if len(cfg.InitialCluster) == 0 {
		return c, fmt.Errorf("raftex: %s holds no cluster yet: give the initial cluster (id=host:port,...)", cfg.DataDir)
	}
	if _, ok := cfg.InitialCluster[cfg.ID]; !ok {
		return c, fmt.Errorf("raftex: the initial cluster does not include this node %s", node.FormatID(cfg.ID))
	}
	c = clusterFile{Members: map[string]string{}}
	for id, addr := range cfg.InitialCluster {
		c.Members[strconv.FormatUint(id, 10)] = addr
	}
	c.ClusterID = clusterID(cfg.InitialCluster)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return c, err
	}
	b, _ = json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return c, err
	}
	return c, os.Rename(tmp, path)
}

// clusterID names a cluster after its initial members, so nodes of two
// clusters started with different member lists refuse each other.
func clusterID(members map[uint64]string) string {
	var parts []string
	for id, addr := range members {
		parts = append(parts, fmt.Sprintf("%d=%s", id, addr))
	}
	slices.Sort(parts)
	h := fnv.New64a()
	h.Write([]byte(strings.Join(parts, ",")))
	return fmt.Sprintf("%016x", h.Sum64())
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
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

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raftex/raftex/internal/loadgen"
)

// memberCommand is the first argument that makes this program one etcd
// member (runMember) instead of the harness.
const memberCommand = "etcd-member"

// runMember runs one embedded etcd member with embed's defaults (fsync
// on) until SIGTERM.
func runMember(args []string) error {
	fs := flag.NewFlagSet(memberCommand, flag.ContinueOnError)
	name := fs.String("name", "", "member name")
	dir := fs.String("dir", "", "data directory")
	peer := fs.String("peer-url", "", "peer URL")
	clientURL := fs.String("client-url", "", "client URL")
	initial := fs.String("initial-cluster", "", "name=peer-url,...")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir, cfg.InitialCluster, cfg.InitialClusterToken = *name, *dir, *initial, "raftex-compare"
	pu, err := url.Parse(*peer)
	if err != nil {
		return err
	}
	cu, err := url.Parse(*clientURL)
	if err != nil {
		return err
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	if cfg.UnsafeNoFsync {
		return errors.New("embed's default turned fsync off")
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil
	case err := <-e.Err():
		return err
	}
}

// etcdCluster is three etcd members, each embedded in a process of its own
// (this program as runMember), driven through one etcd client whose gRPC
// balancer goes round-robin over them.
type etcdCluster struct {
	members []*proc
	cli     *clientv3.Client
}

func startEtcd(ctx context.Context, dir string) (*etcdCluster, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	var initial, endpoints []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("e%d=http://127.0.0.1:%d", i+1, ports[2*i]))
		endpoints = append(endpoints, fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]))
	}
	c := &etcdCluster{}
	for i := range 3 {
		name := fmt.Sprintf("etcd-e%d", i+1)
		p, err := startProc(dir, name, self, memberCommand, "-name", fmt.Sprintf("e%d", i+1),
			"-dir", filepath.Join(dir, name), "-peer-url", fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			"-client-url", endpoints[i], "-initial-cluster", strings.Join(initial, ","))
		if err != nil {
			c.stop()
			return nil, err
		}
		c.members = append(c.members, p)
	}
	c.cli, err = clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.stop()
		return nil, err
	}
	err = until(ctx, time.Minute, "an etcd write", c.members, func(ctx context.Context) error {
		_, err := c.cli.Put(ctx, "compare/ready", "yes")
		return err
	})
	if err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func (c *etcdCluster) name() string           { return "etcd" }
func (c *etcdCluster) target() loadgen.Target { return etcdTarget{c.cli} }
func (c *etcdCluster) procs() []*proc         { return c.members }

func (c *etcdCluster) stop() {
	if c.cli != nil {
		c.cli.Close()
	}
	for _, p := range c.members {
		p.stop()
	}
}

// applied waits until every member applied what the first one committed.
func (c *etcdCluster) applied(ctx context.Context) error {
	return until(ctx, 5*time.Minute, "every etcd member applied the load", c.members, func(ctx context.Context) error {
		var commit uint64
		for i, e := range c.cli.Endpoints() {
			st, err := c.cli.Status(ctx, e)
			if err != nil {
				return err
			}
			if i == 0 {
				commit = st.RaftIndex
			}
			if st.RaftAppliedIndex < commit {
				return fmt.Errorf("%s applied %d of %d", e, st.RaftAppliedIndex, commit)
			}
		}
		return nil
	})
}

// etcdTarget is a loadgen.Target of etcd: Get is linearizable (etcd's
// default).
type etcdTarget struct{ cli *clientv3.Client }

func (t etcdTarget) Put(ctx context.Context, key string, value []byte) error {
	_, err := t.cli.Put(ctx, key, string(value))
	return err
}

func (t etcdTarget) Get(ctx context.Context, key string) (bool, error) {
	resp, err := t.cli.Get(ctx, key)
	if err != nil {
		return false, err
	}
	return resp.Count > 0, nil
}

func (t etcdTarget) ErrorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
		return loadgen.TimeoutKind
	case status.Code(err) == codes.Unavailable:
		return "unavailable"
	}
	return "other"
}

package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/raftex/raftex/internal/tlsutil"
	"github.com/raftex/raftex/node"
)

func certsCmd() *cobra.Command {
	var (
		dir, clientCN string
		nodes, hosts  []string
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Write a CA and the certificates of a TLS cluster into --dir",
		Long: "Write ca.crt and ca.key (unless --dir holds them: they then sign), nN.crt and nN.key for\n" +
			"each of --nodes (to serve and to dial peers; named by the node id and --hosts), and\n" +
			"client.crt and client.key (common name --client-cn, a user). ECDSA P-256; the CA lasts\n" +
			"10 years, the others 825 days; keys are readable by their owner only. No file is ever\n" +
			"overwritten: run it again with --nodes n4 to add a node that joins later.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := tlsutil.Request{Dir: dir, Hosts: hosts, ClientCN: clientCN}
			for _, n := range nodes {
				id, err := node.ParseID(strings.TrimSpace(n))
				if err != nil {
					return usageError("--nodes: %w", err)
				}
				req.Nodes = append(req.Nodes, node.FormatID(id))
			}
			for _, h := range hosts {
				// Every node's certificate names every host: a host
				// named like a node would let each node speak for it.
				if id, err := node.ParseID(h); err == nil && node.FormatID(id) == h {
					return usageError("--hosts: %q is a node id: every node's certificate would name it, so any node could speak for %s", h, h)
				}
			}
			written, err := tlsutil.Generate(req)
			for _, f := range written {
				fmt.Fprintln(cmd.OutOrStdout(), dir+"/"+f)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory of the certificates (made if missing)")
	f.StringSliceVar(&nodes, "nodes", nil, "node ids to write a certificate for: n1,n2,n3")
	f.StringSliceVar(&hosts, "hosts", []string{"127.0.0.1", "localhost"}, "host names and IP addresses the nodes' certificates name besides their ids")
	f.StringVar(&clientCN, "client-cn", "root", "common name (user) of client.crt; empty: no client certificate")
	requireFlags(cmd, "dir")
	return cmd
}

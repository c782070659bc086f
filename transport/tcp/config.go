package tcp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/raftex/raftex/transport"
)

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("transport/tcp: invalid config")

// Config configures a Transport. Zero values of the optional fields mean
// their default (see DefaultConfig).
type Config struct {
	// ID is this node's id. Required, non-zero.
	ID uint64
	// ClusterID names the cluster; a peer from another cluster is refused.
	// Required, at most transport.MaxClusterIDLen bytes.
	ClusterID string
	// ListenAddr is the host:port to accept peers on. Required; port 0
	// picks a free port (see Transport.Addr).
	ListenAddr string
	// Peers maps each peer's id to its address; more come with AddPeer.
	// Only these peers may connect.
	Peers map[uint64]string
	// MaxFrameSize bounds a frame's payload, read or written. A longer
	// message is dropped by the sender and closes the connection at the
	// receiver. Default 16 MiB; at least 1 MiB.
	MaxFrameSize int
	// QueueSize is how many messages may wait for each peer; more are
	// dropped. Default 4096.
	QueueSize int
	// DialTimeout bounds dialing and the handshake. Default 5s.
	DialTimeout time.Duration
	// WriteTimeout bounds one write (a batch of messages or a snapshot
	// chunk): a peer that reads nothing for that long is treated as failed.
	// Default 10s.
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the pause before a reconnect: it
	// doubles from BackoffMin after each failed dial up to BackoffMax, with
	// jitter. Defaults 50ms and 2s.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// Logger receives connection errors (warn) and refusals (error).
	// Default: discard.
	Logger *slog.Logger
	// TLS, when set, runs every peer connection over mutual TLS and binds
	// it to the node its certificate names. Nil: plain TCP.
	TLS *TLS
}

// TLS secures the peer connections: each end verifies the other's
// certificate chain, then the acceptor checks that the dialer's
// certificate names the node its hello claims, and the dialer that the
// acceptor's names the node it dialed. A connection is bound to that node:
// a message claiming another sender closes it.
type TLS struct {
	// Server configures accepted connections; it must require and verify
	// a client certificate (tls.RequireAndVerifyClientCert).
	Server *tls.Config
	// Client configures dialed connections; it must verify the server's
	// certificate chain (not its host name: VerifyPeer checks the node).
	Client *tls.Config
	// VerifyPeer checks that a verified certificate names node id.
	VerifyPeer func(id uint64, cert *x509.Certificate) error
}

// Limits and defaults.
const (
	minFrameSize = 1 << 20 // room for a snapshot chunk and its MsgSnap
	maxFrameSize = 1 << 30
	// chunkSize is the largest snapshot body chunk per frame.
	chunkSize = 256 << 10
)

// DefaultConfig returns a Config with every optional field at its default;
// set ID, ClusterID, ListenAddr and Peers.
func DefaultConfig() Config {
	return Config{
		MaxFrameSize: 16 << 20,
		QueueSize:    4096,
		DialTimeout:  5 * time.Second,
		WriteTimeout: 10 * time.Second,
		BackoffMin:   50 * time.Millisecond,
		BackoffMax:   2 * time.Second,
	}
}

// withDefaults returns c with its zero optional fields set.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.MaxFrameSize, d.MaxFrameSize)
	set(&c.QueueSize, d.QueueSize)
	setD(&c.DialTimeout, d.DialTimeout)
	setD(&c.WriteTimeout, d.WriteTimeout)
	setD(&c.BackoffMin, d.BackoffMin)
	setD(&c.BackoffMax, d.BackoffMax)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first problem with c, naming the bad value. It
// changes nothing; zero optional fields stand for their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.ID == 0:
		return fmt.Errorf("%w: ID must not be 0", ErrInvalidConfig)
	case c.ClusterID == "" || len(c.ClusterID) > transport.MaxClusterIDLen:
		return fmt.Errorf("%w: cluster id %q must have 1 to %d bytes", ErrInvalidConfig, c.ClusterID, transport.MaxClusterIDLen)
	case c.ListenAddr == "":
		return fmt.Errorf("%w: listen address is empty", ErrInvalidConfig)
	case c.MaxFrameSize < minFrameSize || c.MaxFrameSize > maxFrameSize:
		return fmt.Errorf("%w: max frame size %d is outside [%d, %d]", ErrInvalidConfig, c.MaxFrameSize, minFrameSize, maxFrameSize)
	case c.QueueSize < 0:
		return fmt.Errorf("%w: queue size %d is negative", ErrInvalidConfig, c.QueueSize)
	case c.DialTimeout < 0 || c.WriteTimeout < 0:
		return fmt.Errorf("%w: dial timeout %s and write timeout %s must not be negative", ErrInvalidConfig, c.DialTimeout, c.WriteTimeout)
	case c.BackoffMin < 0 || c.BackoffMin > c.BackoffMax:
		return fmt.Errorf("%w: backoff min %s must be in [0, backoff max %s]", ErrInvalidConfig, c.BackoffMin, c.BackoffMax)
	case c.TLS != nil && (c.TLS.Server == nil || c.TLS.Client == nil || c.TLS.VerifyPeer == nil):
		return fmt.Errorf("%w: TLS needs a server config, a client config and VerifyPeer", ErrInvalidConfig)
	}
	for id, addr := range c.Peers {
		if err := c.validatePeer(id, addr); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) validatePeer(id uint64, addr string) error {
	switch {
	case id == 0:
		return fmt.Errorf("%w: peer id 0 (address %q) is reserved", ErrInvalidConfig, addr)
	case id == c.ID:
		return fmt.Errorf("%w: peer %d (address %q) is this node", ErrInvalidConfig, id, addr)
	case addr == "":
		return fmt.Errorf("%w: peer %d has no address", ErrInvalidConfig, id)
	}
	return nil
}

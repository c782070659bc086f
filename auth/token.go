package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Errors of logging in and of tokens.
var (
	// ErrBadPassword: no such user, or the wrong password (the two are
	// not told apart, and take the same time).
	ErrBadPassword = errors.New("auth: wrong user name or password")
	// ErrAuthDisabled: logging in while auth is disabled (no key signs
	// tokens yet, and none is needed).
	ErrAuthDisabled = errors.New("auth: auth is not enabled")
	// ErrBadToken: the token is malformed or its signature is wrong.
	ErrBadToken = errors.New("auth: invalid token")
	// ErrTokenExpired: the token's time is up; log in again.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrTokenRevoked: the token's user was deleted (or deleted and added
	// again) since it was issued.
	ErrTokenRevoked = errors.New("auth: the token's user no longer exists")
	// ErrBehind: the token was issued by a node further along the log
	// than this state: verify it again once this node caught up (after a
	// read barrier).
	ErrBehind = errors.New("auth: this node has not applied the state the token was issued in")
	// ErrPasswordSize: bcrypt takes 1 to 72 bytes.
	ErrPasswordSize = errors.New("auth: a password is 1 to 72 bytes")
)

// HashPassword returns the bcrypt hash of password at cost (bcrypt's
// DefaultCost, 10, unless a test needs speed).
func HashPassword(password string, cost int) ([]byte, error) {
	if len(password) == 0 || len(password) > 72 {
		return nil, ErrPasswordSize
	}
	return bcrypt.GenerateFromPassword([]byte(password), cost)
}

// dummyHash is compared against when the user does not exist, so that a
// wrong name takes as long as a wrong password.
var dummyHash = []byte("$2a$10$Pbck9.jX84oIxiMscgv6nOof/qBYNusBBm4JrqVjAQ20Hrj5Wi8jS")

// Login checks name's password and returns a token that expires ttl after
// now. It costs a bcrypt comparison (tens of milliseconds at the default
// cost): callers bound how many run at once.
func (s *State) Login(name, password string, now time.Time, ttl time.Duration) (string, time.Time, error) {
	if !s.Enabled() {
		return "", time.Time{}, ErrAuthDisabled
	}
	u, ok := s.users[name]
	hash := dummyHash
	if ok {
		hash = u.Hash
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || !ok {
		return "", time.Time{}, ErrBadPassword
	}
	exp := now.Add(ttl)
	return s.sign(claims{user: name, userRev: u.Rev, authRev: s.rev, expiry: exp.UnixMilli()}), exp, nil
}

// claims are what a token says. Encoding (uvarints, then the name):
//
//	version(1) userRev authRev expiry(unix ms) name
//
// and the token is base64url(claims) "." base64url(HMAC-SHA256(key, claims)).
type claims struct {
	user    string
	userRev uint64 // the user's Rev: a user added again does not match
	authRev uint64 // the state's Rev when issued: a node behind it cannot judge
	expiry  int64
}

const tokenVersion = 1

func (c claims) encode() []byte {
	b := []byte{tokenVersion}
	b = binary.AppendUvarint(b, c.userRev)
	b = binary.AppendUvarint(b, c.authRev)
	b = binary.AppendUvarint(b, uint64(c.expiry))
	return append(b, c.user...)
}

func decodeClaims(b []byte) (claims, bool) {
	var c claims
	if len(b) < 1 || b[0] != tokenVersion {
		return c, false
	}
	b = b[1:]
	for _, v := range []*uint64{&c.userRev, &c.authRev} {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return c, false
		}
		*v, b = x, b[n:]
	}
	exp, n := binary.Uvarint(b)
	if n <= 0 || exp > 1<<62 {
		return c, false
	}
	c.expiry, c.user = int64(exp), string(b[n:])
	return c, true
}

func (s *State) sign(c claims) string {
	payload := c.encode()
	mac := hmac.New(sha256.New, s.key)
	mac.Write(payload)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(mac.Sum(nil))
}

// maxTokenSize bounds what is decoded.
const maxTokenSize = 1024

// Verify returns the user a token names, if its signature holds, it has
// not expired at now, and its user still exists as it was. ErrBehind
// means this state is older than the token's: ask again once caught up.
// Verify does not look at whether auth is enabled.
func (s *State) Verify(token string, now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	p, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > maxTokenSize {
		return "", ErrBadToken
	}
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(sig)
	c, ok := decodeClaims(payload)
	if err1 != nil || err2 != nil || !ok {
		return "", ErrBadToken
	}
	if s == nil || s.key == nil {
		if c.authRev > s.Rev() {
			return "", ErrBehind
		}
		return "", ErrBadToken
	}
	h := hmac.New(sha256.New, s.key)
	h.Write(payload)
	if !hmac.Equal(mac, h.Sum(nil)) {
		return "", ErrBadToken
	}
	if now.UnixMilli() >= c.expiry {
		return "", fmt.Errorf("%w (at %s)", ErrTokenExpired, time.UnixMilli(c.expiry).UTC().Format(time.RFC3339))
	}
	if u, ok := s.users[c.user]; ok && u.Rev == c.userRev {
		return c.user, nil
	}
	if c.authRev > s.rev {
		return "", ErrBehind
	}
	return "", fmt.Errorf("%w (%q)", ErrTokenRevoked, c.user)
}

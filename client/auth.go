package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// The management of auth (docs/security.md): each call is a write in the
// client's session, so a retry applies it once, and needs the root role
// once auth is enabled. Each returns the revision of the change.

// AuthEnable turns auth on; the cluster needs a user with the root role.
func (c *Client) AuthEnable(ctx context.Context) (uint64, error) {
	return c.authChange(ctx, http.MethodPost, "/v1/auth/enable", nil)
}

// AuthDisable turns auth off (users and roles stay).
func (c *Client) AuthDisable(ctx context.Context) (uint64, error) {
	return c.authChange(ctx, http.MethodPost, "/v1/auth/disable", nil)
}

// UserAdd adds a user with a password (1 to 72 bytes).
func (c *Client) UserAdd(ctx context.Context, name, password string) (uint64, error) {
	return c.authChange(ctx, http.MethodPost, "/v1/auth/users", map[string]string{"name": name, "password": password})
}

// UserDelete deletes a user.
func (c *Client) UserDelete(ctx context.Context, name string) (uint64, error) {
	return c.authChange(ctx, http.MethodDelete, "/v1/auth/users/"+url.PathEscape(name), nil)
}

// UserGrant gives a user a role ("root" for the built-in one).
func (c *Client) UserGrant(ctx context.Context, name, role string) (uint64, error) {
	return c.authChange(ctx, http.MethodPost, "/v1/auth/users/"+url.PathEscape(name)+"/roles", map[string]string{"role": role})
}

// RoleAdd adds a role without permissions.
func (c *Client) RoleAdd(ctx context.Context, name string) (uint64, error) {
	return c.authChange(ctx, http.MethodPost, "/v1/auth/roles", map[string]string{"name": name})
}

// RoleGrant gives a role access ("read" or "readwrite") to every key that
// starts with prefix ("": every key), replacing what it had there.
func (c *Client) RoleGrant(ctx context.Context, role, prefix, access string) (uint64, error) {
	return c.authChange(ctx, http.MethodPost, "/v1/auth/roles/"+url.PathEscape(role)+"/permissions",
		map[string]string{"prefix": prefix, "access": access})
}

func (c *Client) authChange(ctx context.Context, method, path string, body map[string]string) (uint64, error) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	var out struct {
		Revision uint64 `json:"revision"`
	}
	err := c.writeTo(ctx, method, path, b, &out)
	return out.Revision, err
}

package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Role grants commands in environments to Slack users and user groups,
// always by ID, never by name.
type Role struct {
	Name         string
	Users        []string // user IDs
	Groups       []string // user-group IDs
	Commands     []string // permission names; "*" for all, "x.*" for every sub of x
	Environments []string // environment names; "*" for all
}

// GroupResolver lists the members of a user group.
type GroupResolver interface {
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Authorizer decides who may run what, where. Deny by default.
type Authorizer struct {
	roles  []Role
	groups GroupResolver
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]groupEntry
}

type groupEntry struct {
	members []string
	fetched time.Time
}

// NewAuthorizer returns an Authorizer over roles, resolving group membership
// through groups and caching it for ttl.
func NewAuthorizer(roles []Role, groups GroupResolver, ttl time.Duration, now func() time.Time) *Authorizer {
	if now == nil {
		now = time.Now
	}
	return &Authorizer{roles: roles, groups: groups, ttl: ttl, now: now, cache: map[string]groupEntry{}}
}

// Decide reports whether user may use permission in env (env is empty for
// commands that are not about one environment) and, when refused, why.
func (a *Authorizer) Decide(ctx context.Context, user, permission, env string) (bool, string) {
	var groupErr error
	for _, r := range a.roles {
		if !matchPermission(r.Commands, permission) || !matchEnv(r.Environments, env) {
			continue
		}
		// Only reads may lean on a list Slack could not refresh: who may
		// change things, or approve, is never decided on stale membership.
		ok, err := a.member(ctx, r, user, readOnly[permission])
		if err != nil {
			groupErr = err
			continue
		}
		if ok {
			return true, ""
		}
	}
	var stale *staleGroupError
	switch {
	case errors.As(groupErr, &stale):
		return false, fmt.Sprintf("your group membership could not be refreshed (%v), and %s changes things, so it is not decided on the list cached %s ago; read-only commands still work. Try again in a minute.",
			stale.err, permission, stale.age.Round(time.Second))
	case groupErr != nil:
		return false, fmt.Sprintf("your group membership could not be checked (%v); try again in a minute", groupErr)
	}
	where := ""
	if env != "" {
		where = " in " + env
	}
	return false, fmt.Sprintf("you are not allowed to run %s%s: no role grants it to you. Ask an admin to add your user or group to a role.", permission, where)
}

// Permitted reports whether user may use permission in at least one
// environment; help uses it to list what the caller may run.
func (a *Authorizer) Permitted(ctx context.Context, user, permission string) bool {
	for _, r := range a.roles {
		if !matchPermission(r.Commands, permission) {
			continue
		}
		if ok, err := a.member(ctx, r, user, true); err == nil && ok {
			return true
		}
	}
	return false
}

// member reports whether user is in role r; with allowStale a group whose
// refresh failed is judged on its last list.
func (a *Authorizer) member(ctx context.Context, r Role, user string, allowStale bool) (bool, error) {
	if slices.Contains(r.Users, user) {
		return true, nil
	}
	var lastErr error
	for _, g := range r.Groups {
		members, err := a.groupMembers(ctx, g, allowStale)
		if err != nil {
			lastErr = err
			continue
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, lastErr
}

// staleGroupError is a refresh that failed while a list older than the TTL
// was cached.
type staleGroupError struct {
	err error
	age time.Duration
}

func (e *staleGroupError) Error() string { return e.err.Error() }
func (e *staleGroupError) Unwrap() error { return e.err }

// groupMembers returns the cached members of a group, refreshing them after
// the TTL. When a refresh fails the stale list is used only with
// allowStale (reads: a Slack hiccup at 3 a.m. must not hide status from the
// on-call engineer); otherwise the failure is a *staleGroupError.
func (a *Authorizer) groupMembers(ctx context.Context, group string, allowStale bool) ([]string, error) {
	a.mu.Lock()
	e, ok := a.cache[group]
	a.mu.Unlock()
	if ok && a.now().Sub(e.fetched) < a.ttl {
		return e.members, nil
	}
	if a.groups == nil {
		return nil, fmt.Errorf("no group resolver configured for %s", group)
	}
	members, err := a.groups.GroupMembers(ctx, group)
	if err != nil {
		err = fmt.Errorf("members of %s: %w", group, err)
		switch {
		case ok && allowStale:
			return e.members, nil
		case ok:
			return nil, &staleGroupError{err: err, age: a.now().Sub(e.fetched)}
		}
		return nil, err
	}
	a.mu.Lock()
	a.cache[group] = groupEntry{members: members, fetched: a.now()}
	a.mu.Unlock()
	return members, nil
}

func matchPermission(patterns []string, permission string) bool {
	for _, p := range patterns {
		switch {
		case p == "*" || p == permission:
			return true
		case strings.HasSuffix(p, ".*"):
			base := strings.TrimSuffix(p, ".*")
			if permission == base || strings.HasPrefix(permission, base+".") {
				return true
			}
		}
	}
	return false
}

func matchEnv(envs []string, env string) bool {
	if env == "" {
		return true
	}
	return slices.Contains(envs, "*") || slices.Contains(envs, env)
}

package history

// Group names for the scopes the API charts: ScopeGroup("site", "barn-1") is "site:barn-1". The org that
// owns the miners registers them (SetGroups) as its devices change; the Fleet ("") needs no registration.
const (
	ScopeSite = "site"
	ScopeNode = "node"
	ScopeOrg  = "org"
)

// ScopeGroup is the group name of a site, node or org id.
func ScopeGroup(scope, id string) string { return scope + ":" + id }

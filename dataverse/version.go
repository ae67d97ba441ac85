package dataverse

// version is the dvgate version sent in the User-Agent header. Release builds
// set it with -ldflags "-X github.com/dvgate/dvgate/dataverse.version=v1.2.3";
// nothing else writes it.
var version = "dev"

// Version reports the dvgate version ("dev" in development builds).
func Version() string { return version }

// DefaultUserAgent is the User-Agent sent when Config.UserAgent is empty.
func DefaultUserAgent() string { return "dvgate/" + version }

package domicile

import (
	"slices"
	"strings"
	"time"
)

// DefaultMaxObjectBytes is the default limit on an object's size: 1 GiB.
const DefaultMaxObjectBytes int64 = 1 << 30

// CellConfig declares a cell: where it is, who runs it, and what backs it.
type CellConfig struct {
	ID           string       `json:"id"`
	Jurisdiction Jurisdiction `json:"jurisdiction"`
	// Operator is the legal entity that runs the cell.
	Operator string `json:"operator"`
	// Location is where the cell's storage is, in words.
	Location string      `json:"location"`
	Store    StoreConfig `json:"-"`
	Custody  KeyCustody  `json:"-"`
	// URL is where the cell's own process serves its API when each cell
	// runs as its own process (serve --cell): the router forwards to it,
	// and the cell listens on its host and port unless --addr says
	// otherwise. Empty for the embedded runtime, which serves every cell
	// in one process. An http or https URL with a host and no path.
	URL string `json:"-"`
}

// StoreConfig chooses a cell's storage engine (a cell's `store:`), or
// the deployment's control store (`control:`).
type StoreConfig struct {
	// Kind is "sqlite" (embedded), "pebble" (embedded, on Pebble:
	// commits grouped without a single writer) or "postgres". A cell's
	// store that names no kind keeps "" here, which means the embedded
	// default: it is resolved against the cell's data directory when the
	// store is opened (Pebble, unless the directory already holds a
	// SQLite cell store an earlier build made), because only the process
	// that opens the store knows that directory. The control store's
	// Kind is never empty: "sqlite" when the file names none.
	Kind string `yaml:"kind"`
	// DSNEnv names the environment variable holding a PostgreSQL
	// connection string, so that no credential sits in the file.
	DSNEnv string `yaml:"dsn_env"`
	// The rest is PostgreSQL's; zero values take the store's defaults
	// for a small server. Schema is the store's schema (a cell's key
	// store uses Schema + "_keys"); MaxConns the pool size of each of
	// its stores; StatementTimeout and ConnectTimeout bound each
	// statement and connection attempt; Retries is how often a
	// transaction that failed with a serialization failure or deadlock
	// is run again (negative: never).
	Schema           string        `yaml:"schema"`
	MaxConns         int           `yaml:"max_conns"`
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	ConnectTimeout   time.Duration `yaml:"connect_timeout"`
	Retries          int           `yaml:"serialization_retries"`
	// MemoryMiB bounds a Pebble store's block cache and memtables
	// together, in MiB (0: the store's default). Only a cell's store that
	// is or may be Pebble takes it (kind pebble, or no kind: the embedded
	// default; a cell whose data directory holds SQLite ignores it).
	MemoryMiB int `yaml:"memory_mib"`
}

// KeyCustody chooses where a cell's key-encryption key lives.
type KeyCustody struct {
	// Kind is "file" (a keyring file in the cell's data directory, the
	// default), "pkcs11" (an HSM) or "keyd" (an external custodian).
	Kind string `yaml:"kind"`
	// PKCS#11: the module path, token label, and the environment
	// variable holding the PIN.
	Module string `yaml:"module"`
	Token  string `yaml:"token"`
	PINEnv string `yaml:"pin_env"`
	// keyd: the custodian's URL and the client certificate files.
	URL      string `yaml:"url"`
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// PolicyRule says which cells may hold the data of subjects of one
// jurisdiction; the first cell is the default home. An empty Jurisdiction
// is the catch-all ("*").
type PolicyRule struct {
	Jurisdiction Jurisdiction `json:"jurisdiction,omitempty"`
	Cells        []string     `json:"cells"`
}

// Declarations are facts about the business the law engine needs and the
// system cannot observe.
type Declarations struct {
	Entity        string `yaml:"entity" json:"entity,omitempty"`
	CIIO          bool   `yaml:"ciio" json:"ciio"`
	ImportantData bool   `yaml:"important_data" json:"important_data"`
	Contact       string `yaml:"contact" json:"contact,omitempty"`
}

// Deployment is a whole deployment: cells, residency policy, record kinds
// and purposes. It is immutable once loaded.
type Deployment struct {
	Name           string
	Cells          []CellConfig
	Policy         []PolicyRule
	Kinds          []Kind
	Purposes       []Purpose
	MaxObjectBytes int64
	Declarations   Declarations
	// Mechanisms are the transfer mechanisms the business declares it
	// holds or plans, in the file's order.
	Mechanisms []MechanismDecl
	// Rules, when its Path is set, replaces the embedded law rules with a
	// signed rule bundle (or directory) verified against Keys.
	Rules RulesConfig
	// Witnesses are the stand-alone witnesses the cells submit their
	// checkpoints to, and WitnessWait how long a new checkpoint waits for
	// the required ones' cosignatures (see [WitnessConfig]; zero: the
	// log's default, 10 s).
	Witnesses   []WitnessConfig
	WitnessWait time.Duration
	// Control is where the tokens, revocations and the subject directory
	// live: Kind "sqlite" (the default) keeps them in the control
	// directory (the router's --data, a cell's --control), "postgres" in
	// a PostgreSQL schema that every process of the deployment opens.
	Control StoreConfig
	// InlineTypes are the media types (lower case, no parameters) that
	// object downloads may show inline in a browser; every other object
	// is served as an attachment.
	InlineTypes []string
	// NoticeLead, if set, is how long before a migration into this
	// deployment the notices of the subjects it moves must have been
	// delivered; nil means DefaultNoticeLead.
	NoticeLead *time.Duration
}

// DefaultNoticeLead is the notice lead time of a deployment that sets
// none: 30 days.
const DefaultNoticeLead = 30 * 24 * time.Hour

// Lead returns the deployment's notice lead time.
func (d *Deployment) Lead() time.Duration {
	if d.NoticeLead == nil {
		return DefaultNoticeLead
	}
	return *d.NoticeLead
}

// Inline reports whether an object of media type mediaType (lower case,
// no parameters) may be shown inline.
func (d *Deployment) Inline(mediaType string) bool {
	return slices.Contains(d.InlineTypes, mediaType)
}

// RulesConfig names a rule bundle and the keys that may sign it.
type RulesConfig struct {
	// Path is the bundle file or rule directory; a relative path is taken
	// from the deployment file's directory.
	Path string `yaml:"path"`
	// Keys are signed-note verifier keys (NAME+HASH+KEY); the bundle must
	// carry a signature by one of them.
	Keys []string `yaml:"keys"`
}

// Cell returns the cell with the given id, or nil.
func (d *Deployment) Cell(id string) *CellConfig {
	for i := range d.Cells {
		if d.Cells[i].ID == id {
			return &d.Cells[i]
		}
	}
	return nil
}

// Kind returns the record kind with the given name, or nil.
func (d *Deployment) Kind(name string) *Kind {
	for i := range d.Kinds {
		if d.Kinds[i].Name == name {
			return &d.Kinds[i]
		}
	}
	return nil
}

// HasPurpose reports whether p is a declared purpose.
func (d *Deployment) HasPurpose(p string) bool {
	return d.Purpose(p) != nil
}

// PermittedCells returns the cells that may hold data of subjects of
// jurisdiction j: the rule for j itself, else the EU rule for a member
// state, else the catch-all; nil if none applies.
func (d *Deployment) PermittedCells(j Jurisdiction) []string {
	var bloc, any []string
	for _, r := range d.Policy {
		switch {
		case r.Jurisdiction == j:
			return r.Cells
		case r.Jurisdiction == EU && j.InEU():
			bloc = r.Cells
		case r.Jurisdiction == "":
			any = r.Cells
		}
	}
	if bloc != nil {
		return bloc
	}
	return any
}

// Place returns the home cell for a subject of jurisdiction j, checking a
// requested cell if one is given. The error has code EResidency when the
// policy forbids the placement.
func (d *Deployment) Place(j Jurisdiction, requested string) (string, error) {
	cells := d.PermittedCells(j)
	if len(cells) == 0 {
		return "", Errorf(EResidency, "the residency policy places no cell for subjects of %s", j)
	}
	if requested == "" {
		return cells[0], nil
	}
	if d.Cell(requested) == nil {
		return "", &Error{Code: EInvalid, Field: "cell", Message: "unknown cell " + quote(requested)}
	}
	for _, c := range cells {
		if c == requested {
			return c, nil
		}
	}
	return "", &Error{Code: EResidency, Field: "cell", Message: "the residency policy does not permit data of subjects of " + string(j) + " in cell " + quote(requested) + " (" + string(d.Cell(requested).Jurisdiction) + "); permitted: " + strings.Join(cells, ", ")}
}

func quote(s string) string { return "\"" + truncate(s, 64) + "\"" }

// MechanismDecl declares a transfer mechanism the business holds or plans
// (the deployment file's `mechanisms:` section): the legal basis on which
// data of the listed categories may leave the source jurisdiction for the
// destinations, to the recipients, for the purposes. A declaration is what
// a change plan tells people about; the transfer gateway's registry, with
// the mechanism's dates and filings, is what decides each transfer.
type MechanismDecl struct {
	ID string `json:"id"`
	// Kind is one of [MechanismKinds].
	Kind MechanismKind `json:"kind"`
	// Source is the jurisdiction whose law the mechanism satisfies (CN by
	// default); it covers the subjects homed in cells of that jurisdiction.
	Source       Jurisdiction   `json:"source"`
	Destinations []Jurisdiction `json:"destinations"`
	// Recipients names the recipients abroad; "*" means any.
	Recipients []string `json:"recipients"`
	// Purposes lists declared purposes; "*" means any.
	Purposes   []string   `json:"purposes"`
	Categories []Category `json:"categories"`
	// Reference is the contract, approval or certificate reference, if any.
	Reference string `json:"reference,omitempty"`
}

// Equal reports whether m and o declare the same mechanism in the same
// words.
func (m *MechanismDecl) Equal(o *MechanismDecl) bool {
	return m.ID == o.ID && m.Kind == o.Kind && m.Source == o.Source && m.Reference == o.Reference &&
		slices.Equal(m.Destinations, o.Destinations) && slices.Equal(m.Recipients, o.Recipients) &&
		slices.Equal(m.Purposes, o.Purposes) && slices.Equal(m.Categories, o.Categories)
}

// LegalEntity returns the legal entity the deployment declares (its name
// by default): the transfer ledger counts per entity.
func (d *Deployment) LegalEntity() string {
	if d.Declarations.Entity != "" {
		return d.Declarations.Entity
	}
	return d.Name
}

// Mechanism returns the declared transfer mechanism with the given id, or
// nil.
func (d *Deployment) Mechanism(id string) *MechanismDecl {
	for i := range d.Mechanisms {
		if d.Mechanisms[i].ID == id {
			return &d.Mechanisms[i]
		}
	}
	return nil
}

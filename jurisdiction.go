package domicile

import "strings"

// Jurisdiction is an ISO 3166-1 alpha-2 country code (CN, DE, US) or the
// bloc code EU. HK, MO and TW are jurisdictions of their own: Chinese law
// treats data sent there from the mainland as leaving the country.
type Jurisdiction string

// EU is the European Union as a bloc; policies may name it instead of each
// member state.
const EU Jurisdiction = "EU"

// iso3166 lists the officially assigned ISO 3166-1 alpha-2 codes.
const iso3166 = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"

// euMembers lists the 27 member states of the European Union.
const euMembers = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"

var (
	assigned = setOf(iso3166)
	eu       = setOf(euMembers)
)

func setOf(s string) map[Jurisdiction]bool {
	m := map[Jurisdiction]bool{}
	for _, c := range strings.Fields(s) {
		m[Jurisdiction(c)] = true
	}
	return m
}

// ParseJurisdiction returns j if it is an assigned ISO 3166-1 alpha-2 code
// or EU. Codes are case-sensitive: "cn" is refused, so that a policy never
// holds two spellings of one place.
func ParseJurisdiction(s string) (Jurisdiction, error) {
	j := Jurisdiction(s)
	if j == EU || assigned[j] {
		return j, nil
	}
	if len(s) == 2 && strings.ToUpper(s) == s {
		return "", Errorf(EInvalid, "jurisdiction %q is not an assigned ISO 3166-1 alpha-2 code", s)
	}
	return "", Errorf(EInvalid, "jurisdiction %q is not a two-letter upper-case ISO 3166-1 code or EU", truncate(s, 16))
}

// InEU reports whether j is an EU member state or the EU itself.
func (j Jurisdiction) InEU() bool { return j == EU || eu[j] }

// Covers reports whether a policy entry for j applies to a subject of
// jurisdiction s: the entry EU covers every member state.
func (j Jurisdiction) Covers(s Jurisdiction) bool {
	return j == s || (j == EU && s.InEU())
}

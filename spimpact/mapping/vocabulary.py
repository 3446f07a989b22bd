"""What exports call the contract's columns and codes: the vocabulary ``spimpact map`` matches.

Header synonyms per contract column and label synonyms per code, as case-management
platforms, spreadsheets and GP systems write them. The ethnic categories follow the
NHS Data Dictionary ETHNIC CATEGORY labels (2001 census classification); appointment
statuses the GP Appointments Data ("attended", "did not attend", "cancelled").
Matching ignores case, punctuation and repeated spaces (:func:`normal`).
"""

from __future__ import annotations

import re

__all__ = [
    "HEADERS",
    "LABELS",
    "MEASURE_ITEMS",
    "POSTCODE",
    "TIMEPOINTS",
    "WEMWBS_RESPONSES",
    "normal",
]


def normal(text) -> str:
    """Lower case, punctuation to spaces, single spaces: how names are compared.

    >>> normal("Date of Referral (DD/MM/YYYY)")
    'date of referral dd mm yyyy'
    """
    return " ".join(re.sub(r"[^0-9a-z]+", " ", str(text).lower()).split())


_CLIENT_ID = ["client id", "client ref", "client reference", "client number", "id",
              "person id", "case id", "case ref", "case reference", "service user id",
              "participant id", "patient id", "unique id", "record id", "person ref",
              "client", "service user ref", "su id", "ref", "reference", "client no",
              "case no", "case number"]  # fmt: skip
_PERSON = {
    "age": ["age", "age at referral", "age years", "years old", "current age"],
    "age_band": ["age band", "age group", "age range", "age bracket"],
    "date_of_birth": ["date of birth", "dob", "birth date", "birthdate", "d o b"],
    "sex": ["sex", "gender", "stated gender", "sex at birth", "person stated gender"],
    "ethnic_category": ["ethnicity", "ethnic group", "ethnic category", "ethnic origin",
                        "ethnic background", "ethnicity description"],
    "lsoa_code": ["lsoa", "lsoa code", "lsoa11", "lsoa21", "lsoa 2011", "lsoa 2021"],
    "imd_decile": ["imd decile", "deprivation decile", "imd", "index of multiple deprivation"],
    "practice_code": ["practice code", "gp practice", "practice", "gp surgery", "surgery",
                      "registered practice", "ods code", "practice ods"],
}  # fmt: skip
POSTCODE = ["postcode", "post code", "postal code", "home postcode", "pcode"]

HEADERS: dict[str, dict[str, list[str]]] = {
    "clients": {
        "client_id": _CLIENT_ID,
        "nhs_number": ["nhs number", "nhs no", "nhsno", "nhs num"],
        "episode": ["episode", "episode number", "referral number", "referral id"],
        "referral_date": ["referral date", "date of referral", "referred on", "date referred",
                          "referral received", "referral received date", "date received",
                          "referral accepted date", "accepted date", "start date"],
        "referral_source": ["referral source", "referral route", "referred by",
                            "source of referral", "referrer", "referrer type", "source", "route",
                            "referral from", "referring organisation"],
        **_PERSON,
        "imd_edition": ["imd edition", "imd year"],
        "consent_data_use": ["consent", "consent to share", "consent to share data",
                             "data consent", "consent data use", "consent to use data",
                             "information sharing consent", "gdpr consent"],
        "consent_contact": ["consent to contact", "contact consent", "happy to be contacted",
                            "consent contact"],
        "discharge_date": ["discharge date", "date closed", "closed on", "closure date",
                           "end date", "case closed", "date discharged", "discharged on"],
        "discharge_reason": ["discharge reason", "closure reason", "reason closed",
                             "reason for closure", "reason for discharge", "outcome",
                             "case outcome"],
    },
    "measures": {
        "client_id": _CLIENT_ID,
        "nhs_number": ["nhs number", "nhs no"],
        "episode": ["episode", "referral number", "referral id"],
        "measure": ["measure", "questionnaire", "tool", "assessment", "assessment type",
                    "outcome measure", "scale", "form", "form name", "survey"],
        "timepoint": ["timepoint", "time point", "review", "stage", "assessment number",
                      "visit", "occasion", "wave", "review number", "point"],
        "date": ["date", "assessment date", "completed", "date completed", "completed on",
                 "form date", "date of assessment", "score date", "review date"],
    },
    "contacts": {
        "client_id": _CLIENT_ID,
        "nhs_number": ["nhs number", "nhs no"],
        "episode": ["episode", "referral id"],
        "contact_date": ["contact date", "date of contact", "appointment date", "session date",
                         "date", "date seen", "activity date"],
        "contact_type": ["contact type", "type", "activity", "session type", "appointment type",
                         "contact reason"],
        "mode": ["mode", "method", "contact method", "channel", "delivery", "contact mode", "how",
                 "delivery method", "how seen", "format"],
        "duration_minutes": ["duration", "minutes", "duration minutes", "length", "time spent",
                             "duration mins"],
    },
    "support_offered": {
        "client_id": _CLIENT_ID,
        "nhs_number": ["nhs number", "nhs no"],
        "episode": ["episode", "referral id"],
        "date": ["date", "date offered", "date referred on", "signposted on", "referral date"],
        "activity_type": ["activity type", "support type", "activity", "referred to",
                          "signposted to", "support", "category", "service type"],
        "organisation_id": ["organisation", "organisation id", "provider", "org id",
                            "organisation ref", "provider id", "org ref", "provider ref",
                            "organisation reference"],
    },
    "gp_appointments": {
        "patient_id": ["patient id", "patient", "patient ref", "client id", "id"],
        "nhs_number": ["nhs number", "nhs no"],
        "appointment_date": ["appointment date", "appt date", "date", "slot date",
                             "appointment start", "booked date"],
        "staff_role": ["staff role", "clinician type", "role", "hcp type", "staff type",
                       "practitioner", "clinician role", "job role"],
        "mode": ["appointment mode", "consultation type", "mode", "consultation mode",
                 "appointment type", "contact mode"],
        "status": ["status", "appointment status", "attendance", "outcome", "attended"],
        "slot_category": ["slot category", "national slot category", "slot type"],
    },
    "comparison_pool": {
        "patient_id": ["patient id", "patient", "patient ref", "id"],
        "nhs_number": ["nhs number", "nhs no"],
        "index_date": ["index date", "eligibility date", "consultation date", "date"],
        **_PERSON,
    },
    "feedback": {
        "feedback_id": ["feedback id", "feedback ref", "feedback reference", "response id",
                        "story id", "feedback number"],
        "client_id": _CLIENT_ID,
        "nhs_number": ["nhs number"],
        "date": ["date", "date received", "feedback date"],
        "feedback_type": ["feedback type", "type", "kind"],
        "themes": ["themes", "theme", "tags", "categories"],
        "consent_to_quote": ["consent to quote", "can quote", "quote consent", "ok to quote",
                             "quote permission", "permission to quote", "consent quote",
                             "happy to be quoted"],
        "text": ["text", "feedback", "comment", "comments", "story", "what they said"],
    },
    "population": {
        "dimension": ["dimension", "breakdown"],
        "category": ["category", "group", "value"],
        "population": ["population", "count", "n", "people", "registered"],
    },
}  # fmt: skip

_ETHNIC = {
    "A": ["white british", "british", "white english", "white scottish", "white welsh",
          "white english welsh scottish northern irish or british",
          "english welsh scottish northern irish or british", "white uk"],
    "B": ["white irish", "irish"],
    "C": ["any other white background", "white other", "other white", "white any other",
          "gypsy or irish traveller", "white gypsy or irish traveller", "roma",
          "white any other white background", "white european", "eastern european"],
    "D": ["white and black caribbean", "mixed white and black caribbean"],
    "E": ["white and black african", "mixed white and black african"],
    "F": ["white and asian", "mixed white and asian"],
    "G": ["any other mixed background", "mixed other", "other mixed", "mixed any other",
          "any other mixed or multiple ethnic background", "any other mixed",
          "other mixed or multiple ethnic background"],
    "H": ["indian", "asian indian", "asian or asian british indian", "british indian"],
    "J": ["pakistani", "asian pakistani", "asian or asian british pakistani"],
    "K": ["bangladeshi", "asian bangladeshi", "asian or asian british bangladeshi"],
    "L": ["any other asian background", "asian other", "other asian", "asian any other"],
    "M": ["caribbean", "black caribbean", "black or black british caribbean"],
    "N": ["african", "black african", "black or black british african"],
    "P": ["any other black background", "black other", "other black", "black any other",
          "any other black african or caribbean background"],
    "R": ["chinese", "other ethnic group chinese", "asian chinese"],
    "S": ["any other ethnic group", "other ethnic group", "other", "arab", "any other",
          "other ethnic group any other ethnic group"],
    "Z": ["not stated", "prefer not to say", "refused", "declined", "not given",
          "declined to say", "did not wish to say", "declined to answer", "not disclosed"],
    "99": ["not known", "unknown", "not recorded", "missing"],
}  # fmt: skip

LABELS: dict[str, dict[str, list[str]]] = {
    "sex": {
        "female": ["female", "f", "woman", "women", "girl", "2"],
        "male": ["male", "m", "man", "men", "boy", "1"],
        "other": ["other", "non binary", "nonbinary", "indeterminate", "intersex",
                  "prefer to self describe", "9"],
        "unknown": ["unknown", "not known", "prefer not to say", "not stated", "u", "x",
                    "not recorded", "0"],
    },
    "ethnic_category": _ETHNIC,
    "referral_source": {
        "gp": ["gp", "gp surgery", "gp practice", "doctor", "general practitioner", "gp referral",
               "surgery", "family doctor", "referred by gp", "dr", "dr referral",
               "doctor referral", "gp practice referral"],
        "practice_staff": ["practice nurse", "practice staff", "nurse", "receptionist",
                           "practice team", "practice team non gp", "other practice staff",
                           "care coordinator", "health and wellbeing coach", "health coach",
                           "practice pharmacist", "pharmacist", "practice team", "pcn staff",
                           "arrs staff", "practice manager"],
        "self": ["self", "self referral", "self referred", "self-referral", "walk in",
                 "walk-in", "client", "themselves", "family or friend", "friend or family"],
        "vcse": ["vcse", "voluntary sector", "voluntary", "charity", "community organisation",
                 "community group", "third sector", "voluntary organisation"],
        "secondary_care": ["hospital", "secondary care", "consultant", "nhs trust",
                           "mental health team", "community mental health team", "cmht",
                           "a e", "discharge team", "acute trust", "community health services"],
        "social_care": ["social care", "social worker", "social services", "council",
                        "local authority", "adult social care", "housing", "housing officer"],
        "other": ["other", "police", "fire service", "job centre", "dwp", "school"],
    },
    "status": {
        "attended": ["attended", "seen", "arrived", "finished", "completed", "yes", "attend"],
        "dna": ["dna", "did not attend", "no show", "missed", "failed to attend", "not attended",
                "did not arrive", "no"],
        "cancelled": ["cancelled", "canceled", "cancelled by patient", "cancelled by practice",
                      "cancelled by unit", "patient cancelled", "rescheduled"],
    },
    "staff_role": {
        "gp": ["gp", "doctor", "general practitioner", "salaried gp", "gp partner", "locum gp",
               "registrar"],
        "nurse": ["nurse", "practice nurse", "nurse practitioner", "advanced nurse practitioner",
                  "hca", "healthcare assistant", "health care assistant"],
        "other_clinical": ["pharmacist", "physiotherapist", "paramedic", "clinical pharmacist",
                           "physician associate", "other clinical", "first contact physio"],
        "admin": ["admin", "receptionist", "administrator", "care navigator", "secretary"],
        "social_prescribing_link_worker": ["social prescribing link worker", "link worker",
                                           "social prescriber", "splw",
                                           "social prescribing link worker splw"],
    },
    "mode": {
        "face_to_face": ["face to face", "face-to-face", "f2f", "in person", "surgery",
                         "at practice", "clinic", "office"],
        "telephone": ["telephone", "phone", "tel", "phone call", "telephone call"],
        "video": ["video", "video call", "video consultation", "teams", "zoom"],
        "online": ["online", "email", "e consultation", "econsult", "text", "sms", "message"],
        "home_visit": ["home visit", "home", "visit", "at home"],
    },
    "discharge_reason": {
        "completed": ["completed", "goals met", "goals achieved", "finished", "complete",
                      "successful", "outcome achieved"],
        "disengaged": ["disengaged", "lost contact", "did not engage", "no contact",
                       "unable to contact", "not engaged", "dna"],
        "declined": ["declined", "declined service", "refused", "did not want support",
                     "no longer wanted"],
        "moved_away": ["moved away", "moved", "left area", "moved out of area"],
        "died": ["died", "deceased", "death", "passed away"],
        "referred_on": ["referred on", "onward referral", "referred to another service",
                        "signposted", "transferred", "signposted other service",
                        "referred to other service"],
        "other": ["other"],
    },
    "contact_type": {
        "initial_assessment": ["initial assessment", "assessment", "first appointment",
                               "initial", "first contact", "triage"],
        "follow_up": ["follow up", "follow-up", "review", "ongoing support", "support session"],
        "group_session": ["group session", "group", "group activity", "workshop"],
        "telephone_check_in": ["telephone check in", "check in", "welfare call", "phone check"],
        "other": ["other"],
    },
    "measure": {
        "swemwbs": ["swemwbs", "short wemwbs", "short warwick edinburgh mental wellbeing scale",
                    "short warwick edinburgh", "swembs", "sw wemwbs"],
        "wemwbs": ["wemwbs", "warwick edinburgh mental wellbeing scale", "warwick edinburgh"],
        "ons4": ["ons4", "ons 4", "ons personal wellbeing", "ons wellbeing", "personal wellbeing"],
        "who5": ["who5", "who 5", "who wellbeing index", "who 5 wellbeing index"],
        "eq5d5l": ["eq5d5l", "eq 5d 5l", "eq5d", "eq 5d", "euroqol"],
        "mycaw": ["mycaw", "measure yourself concerns and wellbeing"],
        "ucla3": ["ucla3", "ucla 3", "ucla loneliness", "three item loneliness scale"],
        "ons_loneliness": ["ons loneliness", "loneliness", "how often do you feel lonely"],
    },
    "feedback_type": {
        "case_study": ["case study", "story", "case"],
        "formal": ["formal", "survey", "questionnaire", "complaint", "compliment"],
        "informal": ["informal", "comment", "verbal", "card", "email"],
    },
    "activity_type": {
        "arts_culture": ["arts", "art", "culture", "arts and culture", "music", "creative",
                         "crafts"],
        "physical_activity": ["physical activity", "exercise", "walking", "sport", "gym",
                              "walking group", "swimming"],
        "nature_green": ["nature", "green", "gardening", "allotment", "green space",
                         "outdoors"],
        "befriending_social": ["befriending", "social group", "social groups", "lunch club",
                               "coffee morning", "social", "peer support", "friendship",
                               "befriending and social groups"],
        "advice_welfare_debt": ["advice", "welfare", "debt", "benefits", "citizens advice",
                                "money advice", "financial", "welfare benefits and debt"],
        "housing": ["housing", "housing support", "homelessness"],
        "employment_learning": ["employment", "learning", "education", "training", "courses",
                                "job", "skills"],
        "mental_health_support": ["mental health", "talking therapies", "counselling",
                                  "iapt", "mental health support"],
        "volunteering": ["volunteering", "volunteer"],
        "other": ["other"],
    },
}  # fmt: skip
_BOOLEAN = {
    "true": ["yes", "y", "true", "1", "consent given", "agreed", "consented", "given",
             "granted", "permission granted", "ok"],
    "false": ["no", "n", "false", "0", "consent not given", "declined", "refused", "not given",
              "not consented", "not granted", "consent withheld", "no consent", "withheld",
              "permission not granted"],
}  # fmt: skip
for _name in ("consent_data_use", "consent_contact", "consent_to_quote"):
    LABELS[_name] = _BOOLEAN

# How many items each instrument has: a wide form of 7 items is most likely SWEMWBS.
MEASURE_ITEMS = {"swemwbs": 7, "wemwbs": 14, "ons4": 4, "who5": 5, "eq5d5l": 6, "mycaw": 3,
                 "ucla3": 3, "ons_loneliness": 1}  # fmt: skip
# Answer labels of the Warwick-Edinburgh scales (items 1-5) and time point labels.
WEMWBS_RESPONSES = {"none of the time": 1, "rarely": 2, "some of the time": 3, "often": 4,
                    "all of the time": 5}  # fmt: skip
# "last" labels (final review, exit) are the time point after every other one.
TIMEPOINTS = {
    0: ["baseline", "initial", "start", "pre", "first", "entry", "intake", "assessment",
        "initial assessment", "before", "t0", "0", "week 0", "first assessment"],
    1: ["follow up", "review", "3 month", "3 months", "three months", "3 month review",
        "second", "t1", "1", "12 weeks", "fu", "follow up 1", "review 1", "mid point",
        "midpoint", "interim review"],
    2: ["6 month", "6 months", "six months", "6 month review", "third", "t2", "2",
        "follow up 2", "review 2"],
    "last": ["final", "final review", "exit", "end", "closure", "discharge", "post", "after",
             "end of support", "exit review", "final assessment", "closing review"],
}  # fmt: skip

"""Referral episodes: several referrals of one client, each record in its episode."""

from __future__ import annotations

import pytest

from spimpact.io import load_scheme
from spimpact.linkage import OTHER_EPISODE

CLIENTS = """\
client_id,episode,referral_date,referral_source,age,sex,ethnic_category
c1,1,2024-01-10,gp,45,female,A
c1,2,2024-09-01,self,45,female,A
c2,1,2024-02-11,self,67,male,H
c2,1,2024-03-11,self,67,male,H
"""
MEASURES = """\
client_id,episode,measure,timepoint,date,item_1,item_2,item_3,item_4,item_5,item_6,item_7
c1,,swemwbs,0,2024-01-20,3,3,2,3,3,4,3
c1,,swemwbs,1,2024-04-20,4,4,3,3,4,4,4
c1,,swemwbs,0,2024-09-05,2,2,2,2,2,2,2
c1,7,swemwbs,1,2024-12-05,2,2,2,2,2,2,2
c2,1,swemwbs,0,2024-02-20,2,2,2,3,2,2,3
"""
CONTACTS = """\
client_id,contact_date,contact_type
c1,2024-01-05,initial_assessment
c1,2024-01-15,follow_up
c1,2024-09-02,initial_assessment
"""


def write(folder, clients=CLIENTS, measures=MEASURES, contacts=CONTACTS):
    for name, text in {"clients": clients, "measures": measures, "contacts": contacts}.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def reasons(scheme, table):
    rows = scheme.exclusions[scheme.exclusions["table"] == table]
    return dict(zip(rows["row"], rows["reason"], strict=True))


def test_the_first_episode_is_analysed_and_the_others_accounted_for(tmp_path):
    scheme = load_scheme(write(tmp_path))
    assert scheme.clients[["client_id", "episode"]].values.tolist() == [["c1", "1"], ["c2", "1"]]
    other = OTHER_EPISODE.format(rule="first")
    assert reasons(scheme, "clients") == {
        3: other, 5: "duplicate client_id+episode (first seen at row 4)"
    }  # fmt: skip
    # by date: the baseline of 5 September belongs to episode 2; episode 7 does not exist
    assert reasons(scheme, "measures") == {
        4: other, 5: "record for an episode the client does not have (not in clients)"
    }  # fmt: skip
    # the contact before the first referral belongs to episode 1 and is flagged as early
    assert reasons(scheme, "contacts") == {2: "contact before the referral date", 4: other}
    rec = scheme.reconciliation
    assert (rec["n_read"] == rec["n_used"] + rec["n_excluded"]).all()
    assert scheme.episodes[["client_id", "episode", "analysed"]].values.tolist() == [
        ["c1", "1", True], ["c1", "2", False], ["c2", "1", True]
    ]  # fmt: skip


def test_the_last_episode_can_be_analysed(tmp_path):
    scheme = load_scheme(write(tmp_path), episodes="last")
    assert scheme.clients.set_index("client_id").loc["c1", "referral_source"] == "self"
    c1 = scheme.measures[scheme.measures["client_id"] == "c1"]
    assert c1[["episode", "timepoint"]].values.tolist() == [["2", 0]]
    assert scheme.episode_rule == "last"


def test_without_episodes_nothing_changes(tmp_path):
    clients = "\n".join(
        line.replace(",1,", ",", 1).replace(",2,", ",", 1)
        for line in CLIENTS.replace("episode,", "").splitlines()[:2]
    )
    clients += "\nc2,2024-02-11,self,67,male,H\n"
    measures = MEASURES.splitlines()
    measures = "\n".join([measures[0], measures[1], measures[2], measures[5]]) + "\n"
    scheme = load_scheme(write(tmp_path, clients=clients, measures=measures))
    assert "episode" not in scheme.measures
    assert scheme.episodes["analysed"].all()
    assert len(scheme.clients) == 2


def test_an_unknown_episode_rule_is_refused(tmp_path):
    with pytest.raises(ValueError, match="episodes must be one of first, last"):
        load_scheme(write(tmp_path), episodes="all")

"""Knowledge-base search on the demo tenant: the right fact for what callers actually ask, the
location's own facts over the organisation's, filters, the trigram fallback, tenant isolation."""

from __future__ import annotations

import pytest

from db.demo.seed import seed_demo
from db.desk import knowledge, organizations
from db.errors import Conflict, InvalidInput

pytestmark = pytest.mark.db

# (location, question, topic of the expected best fact)
QUESTIONS = [
    ("midtown", "Do you have parking?", "parking"),
    ("santa-monica", "Are you open on Sunday?", "sunday-hours"),
    ("midtown", "How much is a cleaning?", "price-cleaning"),
    ("midtown", "Do you take Delta Dental insurance?", "insurance"),
    ("midtown", "What's your cancellation policy?", "cancellation"),
    ("santa-monica", "What's your address?", "address"),
    ("midtown", "How much does teeth whitening cost?", "price-whitening"),
    ("midtown", "Can I pay with a credit card?", "payment"),
    ("midtown", "How much is a checkup for my kid?", "price-kids"),
    ("midtown", "Which subway do I take to get there?", "public-transport"),
    ("midtown", "Do you do braces?", "not-offered"),
    ("midtown", "I have a terrible toothache", "emergency"),
    ("santa-monica", "I'm really nervous about the dentist", "sedation"),
    ("midtown", "Is there wifi in the waiting room?", "wifi"),
]


def location_id(demo, key: str):
    return demo.midtown_location_id if key == "midtown" else demo.santa_monica_location_id


async def test_realistic_caller_questions_find_the_right_fact(conn):
    demo = await seed_demo(conn)
    misses = []
    for key, question, topic in QUESTIONS:
        facts = await knowledge.search(conn, organization_id=demo.organization_id,
                                       location_id=location_id(demo, key), query=question)
        if not facts or facts[0].topic != topic:
            misses.append((question, topic, [f.topic for f in facts]))
    assert misses == []


async def test_the_location_fact_replaces_the_organisation_fact_on_its_topic(conn):
    demo = await seed_demo(conn)
    midtown = await knowledge.search(conn, organization_id=demo.organization_id,
                                     location_id=demo.midtown_location_id, query="parking")
    santa_monica = await knowledge.search(conn, organization_id=demo.organization_id,
                                          location_id=demo.santa_monica_location_id, query="parking")
    anywhere = await knowledge.search(conn, organization_id=demo.organization_id, query="parking")
    assert "Icon garage" in midtown[0].content and midtown[0].location_id == demo.midtown_location_id
    assert "free" in santa_monica[0].content and santa_monica[0].location_id == demo.santa_monica_location_id
    assert anywhere[0].location_id is None
    for facts in (midtown, santa_monica, anywhere):
        assert [f.topic for f in facts].count("parking") == 1

    own = midtown[0]
    await knowledge.set_fact_active(conn, fact_id=own.id, is_active=False)
    fallback = await knowledge.search(conn, organization_id=demo.organization_id,
                                      location_id=demo.midtown_location_id, query="parking")
    assert fallback[0].topic == "parking" and fallback[0].location_id is None


async def test_a_location_fact_ranks_first_when_it_answers_as_well(conn):
    demo = await seed_demo(conn)
    await knowledge.add_fact(conn, organization_id=demo.organization_id, category="faq",
                             title="Coffee", content="There is free coffee in the waiting room.")
    local = await knowledge.add_fact(conn, organization_id=demo.organization_id, category="faq",
                                     title="Coffee", content="There is free coffee in the waiting room.",
                                     location_id=demo.midtown_location_id)
    facts = await knowledge.search(conn, organization_id=demo.organization_id,
                                   location_id=demo.midtown_location_id, query="is there coffee")
    assert [f.id for f in facts][0] == local.id and len(facts) == 2


async def test_category_and_tag_filters_narrow_the_search(conn):
    demo = await seed_demo(conn)
    args = {"organization_id": demo.organization_id, "location_id": demo.midtown_location_id}
    prices = await knowledge.search(conn, query="how much does it cost", categories=["services"], limit=10,
                                    **args)
    assert prices and {f.category for f in prices} == {"services"}
    tagged = await knowledge.search(conn, query="open", tags=["Sunday"], **args)
    assert [f.topic for f in tagged] == ["sunday-hours"]
    assert await knowledge.search(conn, query="parking", categories=["policies"], **args) == []
    with pytest.raises(InvalidInput, match="unknown category"):
        await knowledge.search(conn, query="parking", categories=["gossip"], **args)


async def test_a_misheard_word_falls_back_to_trigram_similarity(conn):
    demo = await seed_demo(conn)
    facts = await knowledge.search(conn, organization_id=demo.organization_id,
                                   location_id=demo.midtown_location_id, query="where can I parkk")
    assert facts and facts[0].topic == "parking"
    assert await knowledge.search(conn, organization_id=demo.organization_id,
                                  query="how much is a haircut") == []


async def test_search_never_returns_another_organisations_facts(conn):
    demo = await seed_demo(conn)
    other = await organizations.create_organization(conn, name="Other", slug="other")
    await knowledge.add_fact(conn, organization_id=other.id, category="business_info", title="Parking",
                             content="Valet parking only.", tags=["parking"], priority=100)
    facts = await knowledge.search(conn, organization_id=demo.organization_id, query="valet parking",
                                   limit=10)
    assert facts and all(f.organization_id == demo.organization_id for f in facts)
    theirs = await knowledge.search(conn, organization_id=other.id, query="parking")
    assert [f.content for f in theirs] == ["Valet parking only."]


async def test_inactive_facts_are_not_found_and_a_topic_has_one_active_fact_per_scope(conn):
    demo = await seed_demo(conn)
    fact = await knowledge.add_fact(conn, organization_id=demo.organization_id, category="faq",
                                    title="Pets", content="Service animals are welcome.", topic="pets",
                                    tags=[" Dogs ", "animals", ""])
    assert fact.tags == ("animals", "dogs")
    found = await knowledge.search(conn, organization_id=demo.organization_id, query="dogs and animals")
    assert [f.id for f in found] == [fact.id] and isinstance(found[0].score, float)
    with pytest.raises(Conflict, match="active fact on this topic"):
        await knowledge.add_fact(conn, organization_id=demo.organization_id, category="faq",
                                 title="Pets", content="No pets.", topic="pets")
    await knowledge.set_fact_active(conn, fact_id=fact.id, is_active=False)
    assert await knowledge.search(conn, organization_id=demo.organization_id, query="dogs and animals") == []


async def test_list_facts_gives_a_location_its_facts_with_overrides_applied(conn):
    demo = await seed_demo(conn)
    facts = await knowledge.list_facts(conn, organization_id=demo.organization_id,
                                       location_id=demo.santa_monica_location_id)
    topics = [f.topic for f in facts]
    assert len(topics) == len(set(topics)) >= 30
    parking = next(f for f in facts if f.topic == "parking")
    assert parking.location_id == demo.santa_monica_location_id
    assert all(f.location_id != demo.midtown_location_id for f in facts)
    hours = await knowledge.list_facts(conn, organization_id=demo.organization_id, categories=["hours"])
    assert hours and {f.category for f in hours} == {"hours"}

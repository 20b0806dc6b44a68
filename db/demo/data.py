"""The demo tenant's content: a two-office dental practice (used by `python -m db seed --demo`).

Plain data; db/demo/seed.py writes it. Keys are stable (ids derive from them), so editing a text here
does not change what an existing database holds, and a new entry is added by the next seed run.
"""

from __future__ import annotations

from datetime import time

NEW_YORK_NUMBER = "+15550100100"
LOS_ANGELES_NUMBER = "+15550100200"
ESCALATION_NUMBER = "+15550100999"

ORGANIZATION = {"name": "Bright Smile Dental", "slug": "bright-smile-dental",
                "timezone": "America/New_York"}

# key, slug, name, timezone, phone, line1, line2, city, region, postal code, public holidays.
# Both close on their state's public holidays (US-NY, US-CA), from the `holidays` package: no
# list of dates here that would run out.
LOCATIONS = [
    ("midtown", "midtown-manhattan", "Bright Smile Dental Midtown", "America/New_York", NEW_YORK_NUMBER,
     "350 West 39th Street", "Suite 4B", "New York", "NY", "10018", "regional"),
    ("santa-monica", "santa-monica", "Bright Smile Dental Santa Monica", "America/Los_Angeles",
     LOS_ANGELES_NUMBER, "1450 Ocean Park Boulevard", None, "Santa Monica", "CA", "90405", "regional"),
]

T = time.fromisoformat
WEEKDAYS = (1, 2, 3, 4, 5)

# location key -> (ISO weekday, opens, closes). Midtown closes for lunch on weekdays.
HOURS = {
    "midtown": [(d, T("09:00"), T("12:30")) for d in WEEKDAYS]
    + [(d, T("13:30"), T("17:30")) for d in WEEKDAYS]
    + [(6, T("09:00"), T("13:00"))],
    "santa-monica": [(d, T("08:00"), T("18:00")) for d in (1, 2, 3, 4)]
    + [(5, T("08:00"), T("16:00")), (6, T("09:00"), T("14:00")), (7, T("10:00"), T("14:00"))],
}

# name, minutes, price, description
SERVICES = [
    ("Dental cleaning", 60, "120.00", "Routine cleaning and polish by a hygienist."),
    ("New patient exam", 60, "150.00", "Full exam with x-rays and a treatment plan."),
    ("Teeth whitening", 90, "350.00", "In-office whitening, about 90 minutes."),
    ("Filling", 60, "180.00", "A tooth-coloured filling, per tooth."),
    ("Emergency visit", 30, "95.00", "Same-day visit for pain, a broken tooth or swelling."),
    ("Kids checkup", 30, "80.00", "Checkup and cleaning for children aged 3 to 12."),
]

_DENTIST = ("New patient exam", "Teeth whitening", "Filling", "Emergency visit", "Kids checkup")
# name, title, location key, services
PROVIDERS = [
    ("Dr. Maya Patel", "Dentist", "midtown", _DENTIST),
    ("Dr. Laura Gomez", "Dentist", "midtown", _DENTIST[:4]),
    ("Sam Rivera", "Dental hygienist", "midtown", ("Dental cleaning", "Kids checkup")),
    ("Dr. James Chen", "Dentist", "santa-monica", _DENTIST),
    ("Priya Nair", "Dental hygienist", "santa-monica", ("Dental cleaning", "Kids checkup")),
]

# category, location key (None: organisation-wide), topic, title, content, tags, priority
FACTS = [
    ("business_info", None, "about", "About Bright Smile Dental",
     "Bright Smile Dental is a family dental practice with two offices: Midtown Manhattan in New York "
     "and Santa Monica in California. We are accepting new patients of all ages.",
     ["about", "practice", "new patients"], 60),
    ("business_info", "midtown", "address", "Address and directions",
     "Our Midtown office is at 350 West 39th Street, Suite 4B, New York, NY 10018, between 8th and 9th "
     "Avenue, two blocks from Port Authority.", ["address", "location", "directions", "where"], 80),
    ("business_info", "santa-monica", "address", "Address and directions",
     "Our Santa Monica office is at 1450 Ocean Park Boulevard, Santa Monica, CA 90405, at the corner of "
     "15th Street.", ["address", "location", "directions", "where"], 80),
    ("business_info", None, "address", "Our offices",
     "We have two offices: 350 West 39th Street in Midtown Manhattan, and 1450 Ocean Park Boulevard in "
     "Santa Monica.", ["address", "location", "offices"], 60),
    ("business_info", None, "parking", "Parking",
     "Santa Monica has a free parking lot; in Midtown we validate parking at a garage nearby.",
     ["parking", "car", "garage"], 60),
    ("business_info", "midtown", "parking", "Parking",
     "There is no parking lot at the Midtown office. The Icon garage at 330 West 39th Street is next "
     "door, and we validate two hours of parking there: bring your ticket to the front desk.",
     ["parking", "car", "garage", "validation"], 80),
    ("business_info", "santa-monica", "parking", "Parking",
     "Parking is free: our lot is behind the building, with the entrance on 15th Street. There are "
     "two accessible spaces by the door.", ["parking", "car", "lot", "free"], 80),
    ("business_info", None, "public-transport", "Public transport",
     "Midtown: take the A, C or E subway to 42nd Street-Port Authority. Santa Monica: Big Blue Bus "
     "line 8 stops at Ocean Park and 14th.", ["subway", "bus", "train", "transit"], 50),
    ("business_info", None, "languages", "Languages we speak",
     "Our staff speak English and Spanish; Dr. Chen in Santa Monica also speaks Mandarin.",
     ["spanish", "mandarin", "language"], 40),
    ("business_info", None, "accessibility", "Wheelchair access",
     "Both offices are wheelchair accessible, with step-free entrances and an elevator in Midtown.",
     ["wheelchair", "accessible", "disability", "elevator"], 40),
    ("business_info", None, "phone-numbers", "Phone numbers",
     "Midtown: 555 010 0100. Santa Monica: 555 010 0200. For a dental emergency call as early as "
     "possible and we will fit you in the same day.", ["phone", "call", "number"], 40),
    ("hours", "midtown", "opening-hours", "Opening hours",
     "Midtown is open Monday to Friday 9 am to 5:30 pm, closed for lunch from 12:30 to 1:30, and "
     "Saturday 9 am to 1 pm. Closed on Sundays.", ["hours", "open", "close", "weekend"], 90),
    ("hours", "santa-monica", "opening-hours", "Opening hours",
     "Santa Monica is open Monday to Thursday 8 am to 6 pm, Friday 8 am to 4 pm, Saturday 9 am to "
     "2 pm and Sunday 10 am to 2 pm.", ["hours", "open", "close", "weekend"], 90),
    ("hours", None, "sunday-hours", "Sunday opening",
     "Our Santa Monica office is open on Sundays from 10 am to 2 pm. The Midtown office is closed on "
     "Sundays.", ["sunday", "weekend", "open"], 70),
    ("hours", None, "holidays", "Holiday closures: Thanksgiving, Christmas, New Year",
     "Both offices are closed on public holidays: Midtown on New York State's, Santa Monica on "
     "California's. That includes New Year's Day, Memorial Day, Independence Day, Labor Day, "
     "Thanksgiving and Christmas Day.", ["holiday", "thanksgiving", "christmas", "closed"], 70),
    ("hours", "midtown", "lunch-break", "Lunch break",
     "The Midtown office closes for lunch from 12:30 to 1:30 pm on weekdays; we do not answer the door "
     "then, but the phone is answered.", ["lunch", "break", "closed"], 50),
    ("hours", None, "evening-appointments", "Evening appointments",
     "The latest appointments are at 5 pm in Santa Monica (Monday to Thursday) and 4:30 pm in Midtown. "
     "We do not see patients in the evening.", ["evening", "late", "after work"], 40),
    ("policies", None, "cancellation", "Cancellation policy",
     "Please cancel or reschedule at least 24 hours ahead. Late cancellations and missed appointments "
     "are charged a 50 dollar fee.", ["cancel", "cancellation", "no show", "fee"], 80),
    ("policies", None, "late-arrival", "Late arrival",
     "If you arrive more than 15 minutes late we may need to reschedule your appointment.",
     ["late", "arrival", "delay"], 50),
    ("policies", None, "insurance", "Insurance we accept",
     "We are in network with Delta Dental PPO, Cigna, Aetna, MetLife and Guardian. We do not take HMO "
     "plans; for other insurers we file the claim for you as out of network.",
     ["insurance", "delta dental", "cigna", "aetna", "metlife", "guardian", "ppo", "hmo"], 85),
    ("policies", None, "payment", "Payment methods",
     "We accept cash, all major credit and debit cards, HSA and FSA cards, and CareCredit financing. "
     "Payment is due at the visit.", ["payment", "pay", "credit card", "card", "financing"], 70),
    ("policies", None, "new-patient-forms", "New patient forms",
     "New patients fill in forms online before the visit, arrive 15 minutes early, and bring a photo ID "
     "and their insurance card.", ["new patient", "forms", "paperwork", "id"], 60),
    ("policies", None, "minors", "Children and minors",
     "Patients under 18 must come with a parent or guardian at their first visit.",
     ["children", "minors", "parent", "guardian"], 50),
    ("policies", None, "rescheduling", "Rescheduling",
     "You can move an appointment for free with 24 hours notice, by phone at any time.",
     ["reschedule", "move", "change"], 60),
    ("services", None, "price-cleaning", "Dental cleaning price",
     "A routine dental cleaning costs 120 dollars without insurance and takes about an hour. Most "
     "insurance plans cover two cleanings a year.", ["cleaning", "price", "cost", "hygiene"], 80),
    ("services", None, "price-exam", "New patient exam price",
     "A new patient exam with x-rays costs 150 dollars and takes about an hour.",
     ["exam", "x-ray", "price", "cost", "checkup"], 70),
    ("services", None, "price-whitening", "Teeth whitening price",
     "In-office teeth whitening costs 350 dollars and takes about 90 minutes.",
     ["whitening", "bleaching", "price", "cost"], 70),
    ("services", None, "price-filling", "Filling price",
     "A tooth-coloured filling costs from 180 dollars per tooth.",
     ["filling", "cavity", "price", "cost"], 60),
    ("services", None, "emergency", "Emergency visits",
     "For tooth pain, a broken tooth or swelling we offer same-day emergency visits for 95 dollars. "
     "Call as early in the day as you can.", ["emergency", "pain", "toothache", "broken", "urgent"], 80),
    ("services", None, "price-kids", "Kids checkup price",
     "A checkup and cleaning for kids aged 3 to 12 costs 80 dollars and takes 30 minutes.",
     ["kids", "child", "children", "price", "checkup"], 60),
    ("services", None, "not-offered", "Services we do not offer",
     "We do not offer braces or other orthodontics, dental implants surgery, or general anaesthesia; "
     "we refer you to a specialist we trust.", ["braces", "orthodontics", "implants", "referral"], 50),
    ("faq", None, "walk-ins", "Do you take walk-ins?",
     "We work by appointment. For an emergency call us and we will fit you in the same day.",
     ["walk-in", "walk in", "appointment"], 50),
    ("faq", None, "wifi", "Is there wifi?", "Free guest wifi is available in both waiting rooms.",
     ["wifi", "internet"], 20),
    ("faq", None, "new-patients", "Are you accepting new patients?",
     "Yes, both offices are accepting new patients. Book a new patient exam to get started.",
     ["new patients", "accepting"], 60),
    ("faq", None, "sedation", "Do you offer sedation for nervous patients?",
     "Yes: laughing gas (nitrous oxide) is available at both offices for anxious patients, at 60 "
     "dollars a visit.", ["anxiety", "nervous", "sedation", "laughing gas"], 40),
    ("faq", None, "appointment-length", "How long is an appointment?",
     "A cleaning or an exam takes about an hour, a filling an hour, whitening 90 minutes, and a kids "
     "checkup or an emergency visit 30 minutes.", ["duration", "how long", "length"], 40),
]

CONFIG_INSTRUCTIONS_V1 = (
    "You are the receptionist of Bright Smile Dental. Answer questions from the knowledge base and "
    "book appointments. Keep answers short."
)
CONFIG_INSTRUCTIONS_V2 = (
    "You are Ava, the friendly receptionist of Bright Smile Dental, a family dental practice. You book, "
    "reschedule and cancel appointments and answer questions about the practice. Answer only from the "
    "knowledge base and the booking tools; if you do not know, say so and offer to transfer the caller. "
    "Confirm the service, day, time and the caller's name and phone number before booking, and read back "
    "the confirmation code letter by letter. Speak in short sentences: this is a phone call."
)
GREETING_V1 = "Thank you for calling Bright Smile Dental. How can I help you?"
GREETING_V2 = ("Thanks for calling Bright Smile Dental! This is Ava, the virtual receptionist. I can book, "
               "move or cancel an appointment or answer your questions. How can I help?")
POLICIES_V1 = {"escalation_phone": ESCALATION_NUMBER, "lead_time_minutes": 120, "max_days_ahead": 60,
               "buffer_minutes": 0, "max_call_minutes": 10, "silence_timeout_seconds": 15}
POLICIES_V2 = {"escalation_phone": ESCALATION_NUMBER, "lead_time_minutes": 60, "max_days_ahead": 90,
               "buffer_minutes": 10, "max_call_minutes": 15, "silence_timeout_seconds": 20,
               # LiveKit's endpointing defaults for a streaming turn detector: a brisk desk
               "min_endpointing_delay_ms": 300, "max_endpointing_delay_ms": 2500}
SCRIPT_OVERRIDES_V2 = {
    "goodbye": "Thanks for calling Bright Smile Dental. Have a great day!",
    "transfer": "Let me put you through to one of our team. One moment, please.",
    "after_hours": "Our offices are closed right now, but I can still book or change an appointment.",
}
MODELS = {"stt_model": "deepgram/nova-3", "llm_model": "openai/gpt-4.1-mini",
          "tts_model": "openai/gpt-4o-mini-tts", "tts_voice": "coral"}

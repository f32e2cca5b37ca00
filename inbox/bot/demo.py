"""The demo company's knowledge base for the first-line bot, in Dutch and English."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox.bot.models import BotFaq

ADDRESS = "Industrieweg 12, 3821 AB Amersfoort"
MAPS = "https://www.openstreetmap.org/search?query=Industrieweg%2012%20Amersfoort"

# key, language, question, paraphrases, keywords, answer, buttons
DEMO_FAQS: tuple[dict[str, Any], ...] = (
    {
        "key": "opening_hours",
        "language": "nl",
        "question": "Wat zijn jullie openingstijden?",
        "paraphrases": [
            "Hoe laat zijn jullie open?",
            "Wanneer is de showroom open?",
            "Zijn jullie op zaterdag geopend?",
            "Tot hoe laat kan ik langskomen?",
            "Hoe laat gaan jullie dicht?",
        ],
        "keywords": ["openingstijden", "openingstijd", "geopend", "sluitingstijd"],
        "answer": "Onze showroom en klantenservice zijn open van maandag tot en met vrijdag "
        "van 08:30 tot 17:00 en op zaterdag van 09:00 tot 13:00. Op feestdagen zijn we gesloten.",
        "buttons": [{"label": "Route", "data": "faq:address"}],
    },
    {
        "key": "opening_hours",
        "language": "en",
        "question": "What are your opening hours?",
        "paraphrases": [
            "When are you open?",
            "What time do you close?",
            "Are you open on Saturday?",
            "Until what time can I visit the showroom?",
        ],
        "keywords": ["opening hours", "business hours", "opening times"],
        "answer": "Our showroom and customer service are open Monday to Friday from 08:30 to "
        "17:00 and on Saturday from 09:00 to 13:00. We are closed on public holidays.",
        "buttons": [{"label": "Directions", "data": "faq:address"}],
    },
    {
        "key": "prices",
        "language": "nl",
        "question": "Waar vind ik jullie prijzen?",
        "paraphrases": [
            "Wat kost het?",
            "Hebben jullie een prijslijst?",
            "Hoe duur zijn jullie producten?",
            "Wat zijn jullie tarieven?",
        ],
        "keywords": ["prijslijst", "prijzen", "tarieven", "kosten", "kost"],
        "answer": "Alle actuele prijzen staan in onze webshop; zakelijke klanten zien na het "
        "inloggen hun eigen staffelprijzen. Voor grote aantallen maken we graag een offerte.",
        "buttons": [{"label": "Offerte", "data": "faq:quote"}],
    },
    {
        "key": "prices",
        "language": "en",
        "question": "Where can I find your prices?",
        "paraphrases": [
            "How much does it cost?",
            "Do you have a price list?",
            "How expensive are your products?",
            "What are your rates?",
        ],
        "keywords": ["price list", "prices", "pricing", "rates", "cost"],
        "answer": "All current prices are in our web shop; business customers see their own "
        "volume prices after logging in. For large quantities we gladly make you a quote.",
        "buttons": [{"label": "Quote", "data": "faq:quote"}],
    },
    {
        "key": "order_status",
        "language": "nl",
        "question": "Waar is mijn bestelling?",
        "paraphrases": [
            "Wat is de status van mijn order?",
            "Mijn pakket is nog niet binnen",
            "Is mijn bestelling al verzonden?",
            "Ik heb mijn bestelling nog niet ontvangen",
            "Waar vind ik de track en trace code?",
        ],
        "keywords": ["bestelling", "bestelstatus", "ordernummer", "track en trace", "pakket"],
        "answer": "De status van uw bestelling ziet u in de bevestigingsmail via de track & "
        "trace-link, of onder 'Mijn bestellingen' in uw account. Geen mail ontvangen? Stuur ons "
        "uw ordernummer, dan zoekt een collega het uit.",
        "buttons": [{"label": "Medewerker spreken", "data": "handover"}],
    },
    {
        "key": "order_status",
        "language": "en",
        "question": "Where is my order?",
        "paraphrases": [
            "What is the status of my order?",
            "My package has not arrived yet",
            "Has my order been shipped?",
            "I did not receive my order",
        ],
        "keywords": ["order status", "my order", "tracking", "parcel", "package"],
        "answer": "You can follow your order through the tracking link in the confirmation "
        "e-mail, or under 'My orders' in your account. No e-mail? Send us your order number and "
        "a colleague will look into it.",
        "buttons": [{"label": "Talk to a person", "data": "handover"}],
    },
    {
        "key": "delivery",
        "language": "nl",
        "question": "Wat is de levertijd?",
        "paraphrases": [
            "Hoe snel kunnen jullie leveren?",
            "Bezorgen jullie ook op de bouwplaats?",
            "Wat kost de bezorging?",
            "Leveren jullie ook in het weekend?",
        ],
        "keywords": ["levertijd", "bezorgen", "bezorging", "leveren", "verzendkosten"],
        "answer": "Op voorraad betekent: vandaag vóór 15:00 besteld, morgen geleverd, ook op de "
        "bouwplaats. Bezorging is gratis vanaf € 250; daaronder rekenen we € 35.",
    },
    {
        "key": "delivery",
        "language": "en",
        "question": "What is the delivery time?",
        "paraphrases": [
            "How fast can you deliver?",
            "Do you deliver to the building site?",
            "What are the shipping costs?",
            "Do you deliver at weekends?",
        ],
        "keywords": ["delivery", "deliver", "shipping"],
        "answer": "In stock means: ordered before 15:00, delivered tomorrow, building sites "
        "included. Delivery is free from € 250; below that it costs € 35.",
    },
    {
        "key": "returns",
        "language": "nl",
        "question": "Kan ik iets retourneren?",
        "paraphrases": [
            "Hoe werkt ruilen?",
            "Ik wil mijn geld terug",
            "Kan ik een product terugsturen?",
            "Wat is jullie retourbeleid?",
        ],
        "keywords": ["retour", "retourneren", "ruilen", "terugsturen", "retourbeleid"],
        "answer": "Ongebruikte artikelen in de originele verpakking kunt u binnen 30 dagen "
        "retourneren. Meld de retour aan via 'Mijn bestellingen'; maatwerk is uitgesloten.",
    },
    {
        "key": "returns",
        "language": "en",
        "question": "Can I return an item?",
        "paraphrases": [
            "How do exchanges work?",
            "I want a refund",
            "Can I send a product back?",
            "What is your return policy?",
        ],
        "keywords": ["return", "returns", "refund", "exchange", "send back"],
        "answer": "Unused items in their original packaging can be returned within 30 days. "
        "Register the return under 'My orders'; made-to-measure items are excluded.",
    },
    {
        "key": "quote",
        "language": "nl",
        "question": "Kan ik een offerte aanvragen?",
        "paraphrases": [
            "Ik wil graag een prijsopgave",
            "Kunnen jullie een offerte maken voor mijn project?",
            "Offerte voor kozijnen",
        ],
        "keywords": ["offerte", "prijsopgave", "offertes"],
        "answer": "Graag! Stuur ons de maten, aantallen en het adres van het project. Een "
        "adviseur maakt binnen twee werkdagen een offerte.",
        "buttons": [{"label": "Medewerker spreken", "data": "handover"}],
    },
    {
        "key": "quote",
        "language": "en",
        "question": "Can I get a quote?",
        "paraphrases": [
            "I would like a quotation",
            "Can you make an offer for my project?",
            "Request an estimate",
        ],
        "keywords": ["quote", "quotation", "estimate"],
        "answer": "Gladly! Send us the sizes, quantities and the project address. An adviser "
        "prepares a quote within two working days.",
        "buttons": [{"label": "Talk to a person", "data": "handover"}],
    },
    {
        "key": "address",
        "language": "nl",
        "question": "Wat is jullie adres?",
        "paraphrases": [
            "Waar zitten jullie?",
            "Hoe kom ik bij jullie?",
            "Routebeschrijving naar de showroom",
            "Kan ik bij jullie parkeren?",
        ],
        "keywords": ["adres", "route", "routebeschrijving", "parkeren", "locatie"],
        "answer": f"U vindt ons op {ADDRESS}. Parkeren kan gratis voor de deur.",
        "buttons": [{"label": "Kaart", "data": MAPS}],
    },
    {
        "key": "address",
        "language": "en",
        "question": "What is your address?",
        "paraphrases": [
            "Where are you located?",
            "How do I get to you?",
            "Directions to the showroom",
            "Is there parking?",
        ],
        "keywords": ["address", "directions", "located", "location", "parking"],
        "answer": f"You will find us at {ADDRESS}. Parking in front of the building is free.",
        "buttons": [{"label": "Map", "data": MAPS}],
    },
    {
        "key": "payment",
        "language": "nl",
        "question": "Hoe kan ik betalen?",
        "paraphrases": [
            "Kan ik op rekening kopen?",
            "Accepteren jullie iDEAL?",
            "Welke betaalmethoden zijn er?",
            "Kan ik achteraf betalen?",
        ],
        "keywords": ["betalen", "betaling", "betaalmethode", "betaalmethoden", "ideal", "pinnen"],
        "answer": "U betaalt met iDEAL, creditcard of pin in de showroom. Zakelijke klanten "
        "met een account kunnen op rekening kopen (30 dagen).",
    },
    {
        "key": "payment",
        "language": "en",
        "question": "How can I pay?",
        "paraphrases": [
            "Can I pay by invoice?",
            "Do you accept credit cards?",
            "Which payment methods do you have?",
            "Can I pay later?",
        ],
        "keywords": ["pay", "payment", "payment methods", "credit card", "invoice"],
        "answer": "You can pay with iDEAL, credit card or debit card in the showroom. Business "
        "customers with an account can buy on invoice (30 days).",
    },
    {
        "key": "warranty",
        "language": "nl",
        "question": "Hoe lang is de garantie?",
        "paraphrases": [
            "Valt dit onder de garantie?",
            "Mijn product is kapot",
            "Het apparaat doet het niet meer",
        ],
        "keywords": ["garantie", "kapot", "defect"],
        "answer": "Op al onze producten zit minimaal 2 jaar garantie, op kozijnen 10 jaar. "
        "Stuur een foto en uw ordernummer, dan regelen we de afhandeling.",
    },
    {
        "key": "warranty",
        "language": "en",
        "question": "How long is the warranty?",
        "paraphrases": [
            "Is this covered by the guarantee?",
            "My product is broken",
            "The device stopped working",
        ],
        "keywords": ["warranty", "guarantee", "broken", "defective"],
        "answer": "All our products come with at least 2 years of warranty, window frames "
        "10 years. Send a photo and your order number and we will sort it out.",
    },
    {
        "key": "account",
        "language": "nl",
        "question": "Hoe maak ik een zakelijk account aan?",
        "paraphrases": [
            "Ik wil klant worden",
            "Inloggen lukt niet",
            "Ik ben mijn wachtwoord vergeten",
        ],
        "keywords": ["account", "inloggen", "wachtwoord", "registreren"],
        "answer": "Een zakelijk account maakt u aan op onze website onder 'Registreren' met uw "
        "KvK-nummer. Wachtwoord vergeten? Kies 'Wachtwoord vergeten' bij het inloggen.",
    },
    {
        "key": "account",
        "language": "en",
        "question": "How do I create a business account?",
        "paraphrases": [
            "I want to become a customer",
            "I cannot log in",
            "I forgot my password",
        ],
        "keywords": ["account", "log in", "login", "password", "sign up"],
        "answer": "Create a business account on our website under 'Register' with your Chamber "
        "of Commerce number. Forgot your password? Choose 'Forgot password' when logging in.",
    },
    {
        "key": "contact",
        "language": "nl",
        "question": "Wat is jullie telefoonnummer?",
        "paraphrases": [
            "Hoe kan ik jullie bellen?",
            "Wat is het e-mailadres van de klantenservice?",
            "Hoe neem ik contact op?",
        ],
        "keywords": ["telefoonnummer", "bellen", "e-mailadres", "mailadres"],
        "answer": "U belt ons op 033 123 45 67 of mailt naar service@example.nl. Hier in de "
        "chat kan ook: typ 'medewerker' om een collega te spreken.",
    },
    {
        "key": "contact",
        "language": "en",
        "question": "What is your phone number?",
        "paraphrases": [
            "How can I call you?",
            "What is the customer service e-mail address?",
            "How do I contact you?",
        ],
        "keywords": ["phone number", "telephone", "call you", "email address"],
        "answer": "Call us on +31 33 123 45 67 or e-mail service@example.nl. You can also "
        "type 'human' here to talk to a colleague.",
    },
    {
        "key": "samples",
        "language": "nl",
        "question": "Kan ik stalen of monsters bestellen?",
        "paraphrases": [
            "Hebben jullie proefstukken?",
            "Kan ik de kleuren eerst zien?",
            "Stalen aanvragen",
        ],
        "keywords": ["stalen", "staal", "monster", "monsters", "proefstuk"],
        "answer": "Ja, tot vijf stalen sturen we gratis op. Vraag ze aan bij het product in de "
        "webshop of kom kijken in de showroom.",
    },
    {
        "key": "samples",
        "language": "en",
        "question": "Can I order samples?",
        "paraphrases": [
            "Do you have test pieces?",
            "Can I see the colours first?",
            "Request swatches",
        ],
        "keywords": ["sample", "samples", "swatch", "swatches"],
        "answer": "Yes, we send up to five samples free of charge. Request them on the product "
        "page in the web shop or come and have a look in the showroom.",
    },
)


async def seed_knowledge_base(session: AsyncSession) -> int:
    """Add the demo questions unless the knowledge base has some already; how many were added."""
    if await session.scalar(select(func.count()).select_from(BotFaq)):
        return 0
    for position, item in enumerate(DEMO_FAQS):
        session.add(
            BotFaq(
                key=item["key"],
                language=item["language"],
                question=item["question"],
                paraphrases=list(item["paraphrases"]),
                keywords=list(item["keywords"]),
                answer=item["answer"],
                buttons=list(item.get("buttons", [])),
                position=position,
            )
        )
    await session.flush()
    return len(DEMO_FAQS)

"""A synthetic streaming-and-shop service with planted user segments, for `seglens demo`.

`generate_demo(out_dir, n_users, seed)` writes four CSV files and a JSON description:

- ``items.csv``   item_id,title,categories,description,price -- about 860 titles and shop products;
  categories are separated by ``|``; text is built from per-genre vocabularies so that the genre
  shows in the words an embedding model reads.
- ``events.csv``  user_id,item_id,timestamp,event,value -- ``view`` (watch minutes, empty for a shop
  product page), ``rating`` (1-5) and ``purchase`` (price paid) over 18 months, ISO timestamps.
- ``users.csv``   user_id,country,signup_channel -- attributes weakly correlated with the persona.
- ``labels.csv``  user_id,persona -- the planted persona, ``noise`` for users with random tastes.
- ``personas.json`` -- the planted personas: share, core categories, hours, growing/churning flags.

Every user belongs to one persona (or to the noise group). A persona is a taste profile over item
groups (about 80% of a user's items come from the persona's core groups, some from a secondary group
it shares with another persona, the rest from personal side interests), plus its own active hours,
weekdays, event volume, rating habits and spend. One persona grows (its members sign up more and more
in recent months), one churns (most of its members go quiet in the last three to four months).

Everything is vectorized NumPy; 100,000 users (about 2.7M events) take a few seconds. The same seed
gives byte-identical files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from seglens import SeglensError

__all__ = ["DemoFiles", "generate_demo", "PERSONAS", "START_DATE", "END_DATE"]

START_DATE = date(2024, 1, 1)  # a Monday
END_DATE = date(2025, 6, 30)  # inclusive; 547 days, about 18 months
N_DAYS = (END_DATE - START_DATE).days + 1
_START_EPOCH = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())
_END_EPOCH = _START_EPOCH + N_DAYS * 86400 - 1
MIN_USERS = 50


@dataclass
class DemoFiles:
    """Where the demo data went, and what was planted in it."""

    events: Path
    items: Path
    users: Path
    labels: Path
    personas: dict[str, dict[str, Any]]  # planted persona name -> description (see personas.json)
    personas_json: Path | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # n_users, n_events, n_items, period...


# --------------------------------------------------------------------------------------------------
# Catalog vocabularies. Each group yields items of one genre (or one kind of shop product); the
# persona tastes below are weights over these groups.
# --------------------------------------------------------------------------------------------------

_W: dict[str, list[str]] = {
    # horror
    "h_place": ["Blackwood Manor", "Hollow Creek", "Ravenhill", "Saltmarsh House", "Thornbury Hall",
                "Widow's Peak", "Ashgrove Asylum", "Cold Harbor", "Mercy Falls", "Gallows Lane",
                "Crowmoor", "St. Agnes Orphanage", "Briar Hollow", "Dunmore Lighthouse", "Hexley Farm"],
    "h_monster": ["Crawlers", "Wendigo", "Hollow Men", "Pale Sisters", "Scarecrow", "Revenant",
                  "Harvest Witch", "Skinwalker", "Faceless Bride", "Bone Collector", "Night Nurse",
                  "Drowned Children", "Plague Doctor", "Grinning Man"],
    "h_thing": ["Cellar Door", "Music Box", "Attic", "Coffin", "Red Door", "Ouija Board", "Crypt",
                "Well"],
    "h_dark": ["Dark", "Cellar", "Walls", "Fog", "Crawlspace", "Woods", "Basement", "Graveyard"],
    # thriller / action
    "t_adj": ["Silent", "Last", "Hidden", "Perfect", "Unseen", "Final", "Broken", "Second"],
    "t_noun": ["Witness", "Alibi", "Signal", "Informant", "Confession", "Hostage", "Contract",
               "Passenger", "Verdict"],
    "t_place": ["Room 404", "the Lake House", "Berlin", "Apartment 9", "the Night Train", "Lisbon",
                "the Embassy", "Cabin 12"],
    "t_role": ["detective", "journalist", "nurse", "defense lawyer", "hacker", "young widow",
               "taxi driver", "bank clerk", "former spy"],
    "a_code": ["Nightfall", "Black Viper", "Iron Hawk", "Thunderbolt", "Blackout", "Steel Rain",
               "Cobra", "Zero Hour", "Crossfire"],
    "a_force": ["Velocity", "Impact", "Force", "Pursuit", "Fury", "Overdrive", "Vengeance"],
    # kids / family
    "k_name": ["Pip", "Bobo", "Lulu", "Milo", "Tilly", "Ziggy", "Poppy", "Benny", "Mimi", "Otto",
               "Nina", "Coco", "Bibi", "Toby"],
    "k_animal": ["Otter", "Bunny", "Dragon", "Penguin", "Puppy", "Kitten", "Bear Cub", "Elephant",
                 "Duckling", "Fox Cub", "Hedgehog", "Panda"],
    "k_adj": ["Amazing", "Giggly", "Sparkly", "Super", "Tiny", "Bouncy", "Wonderful"],
    "k_magic": ["Magic", "Flying", "Singing", "Wishing", "Rainbow"],
    "k_thing": ["Balloon", "Treehouse", "Crayon", "Teapot", "Kite", "Bicycle", "Lunchbox"],
    "k_value": ["sharing", "kindness", "counting", "colors", "bedtime", "friendship",
                "brushing teeth", "being brave", "the alphabet", "taking turns"],
    "f_surname": ["Parker", "Baxter", "Delgado", "Okafor", "Lindqvist", "Murphy", "Tanaka",
                  "Robinson"],
    "f_dog": ["Biscuit", "Waffles", "Pickles", "Rocket", "Muffin", "Sherlock", "Noodle"],
    "f_thing": ["Pumpkin", "Go-Kart", "Snowman", "Science Fair", "Cookie", "Sandcastle"],
    "f_job": ["Pirate", "Magician", "Astronaut", "Zookeeper", "Inventor"],
    "f_place": ["Willow", "Maple", "Sunny Hill", "Juniper", "Clover"],
    # documentaries
    "n_habitat": ["Arctic", "Savannah", "Rainforest", "Coral Reef", "Deep Ocean", "Himalayas",
                  "Sahara", "Amazon", "Great Plains", "Mangroves", "Tundra", "Galapagos"],
    "n_animals": ["Snow Leopards", "Elephants", "Wolves", "Orcas", "Gorillas", "Sea Turtles",
                  "Eagles", "Lions", "Polar Bears", "Humpback Whales", "Cheetahs", "Penguins"],
    "d_empire": ["the Roman Empire", "the Ottomans", "the Mongol Khans", "the Aztecs", "Byzantium",
                 "the Habsburgs", "the Vikings", "the Pharaohs", "the Incas", "the Samurai"],
    "d_war": ["World War II", "The Cold War", "The Crusades", "The Civil War",
              "The Napoleonic Wars", "The Great War", "The Hundred Years' War"],
    "d_region": ["the Nile", "Mesopotamia", "the Andes", "the Silk Road", "Ancient Greece",
                 "the Indus Valley", "Carthage"],
    "d_era": ["the Renaissance", "the Middle Ages", "the Industrial Revolution", "the Space Race",
              "the Bronze Age", "the Enlightenment"],
    # romance / drama / comedy
    "r_city": ["Paris", "Rome", "Lisbon", "Vienna", "Santorini", "Kyoto", "New York", "Barcelona",
               "Provence", "Venice", "Copenhagen", "Tuscany"],
    "r_season": ["Summer", "Autumn", "Winter", "Spring"],
    "r_name": ["Emma", "Julia", "Sofia", "Lucas", "Daniel", "Clara", "Isabel", "Henry", "Rosie",
               "Matteo", "Amelia", "Leo"],
    "r_place": ["Midnight", "the Vineyard", "the Lighthouse", "the Bakery", "Christmas",
                "the Flower Shop", "Sunset"],
    "r_job": ["florist", "wedding planner", "bookshop owner", "violinist", "pastry chef",
              "architect", "vet"],
    "dr_surname": ["Hallorans", "Whitfields", "Castellanos", "Brennans", "Ashworths", "Moreaus"],
    "dr_noun": ["Grace", "Water", "Harbor", "Mercy", "Winter", "Silence", "Orchard"],
    "dr_street": ["Elm Street", "Kestrel Road", "Mulberry Lane", "Harbor View", "Sycamore Avenue"],
    "dr_event": ["Flood", "Funeral", "Divorce", "Fire", "Verdict", "Diagnosis"],
    "c_job": ["Substitute Teacher", "Wedding DJ", "Dentist", "Intern", "Lifeguard", "Realtor",
              "Mall Santa"],
    "c_relative": ["Dad", "Aunt", "Mother-in-Law", "Roommate", "Neighbour", "Uncle"],
    "c_comedian": ["Danny Fields", "Priya Shah", "Marcus Bell", "Kiki Ramos", "Tom Oduya",
                   "Gwen Harper"],
    "c_event": ["Road Trip", "Birthday", "Office Party", "Wedding", "Camping Trip", "Family Reunion"],
    # sci-fi / fantasy
    "s_planet": ["Mars", "Europa", "Titan", "Kepler-22b", "Proxima", "Andromeda", "Ganymede",
                 "Tau Ceti"],
    "s_cosmic": ["Event Horizon", "Nebula", "Wormhole", "Dark Matter", "Outer Rim", "Singularity"],
    "s_ship": ["Odyssey", "Valiant", "Helios", "Nomad", "Perihelion", "Artemis", "Prometheus"],
    "s_year": ["2187", "2240", "2391", "3012", "2099", "2455"],
    "fa_realm": ["Eldoria", "Ashenvale", "the Northern Isles", "Myrrhwood", "Valdrake", "Stormhold",
                 "Brightmere", "Dunharrow"],
    "fa_mage": ["Sorcerer", "Dragon Rider", "Elf Queen", "Wizard", "Knight of Embers",
                "Shadow Mage", "Ranger"],
    "fa_material": ["Ash", "Thorns", "Silver", "Obsidian", "Frost", "Stars", "Embers"],
    # cooking
    "ck_chef": ["Chef Marco", "Nadia", "Grandma Rosa", "Chef Kenji", "Aunt Lucy", "Chef Amara",
                "Chef Pierre", "Mama Lin"],
    "ck_cuisine": ["Italian", "Thai", "Mexican", "Indian", "French", "Japanese", "Lebanese",
                   "Vegan", "Korean", "Greek"],
    "ck_region": ["British", "Nordic", "Southern", "Parisian", "Viennese"],
    "ck_city": ["Bangkok", "Mexico City", "Istanbul", "Naples", "Osaka", "Marrakech", "Lima",
                "Hanoi"],
    "ck_dish": ["Pasta", "Dumplings", "Curry", "Tacos", "Ramen", "Bread", "Soups", "Desserts",
                "Barbecue", "Salads"],
    # sports / fitness
    "sp_team": ["City Rovers", "United Harbour", "Real Montana", "Northside FC", "Bay Hawks",
                "Capital Lions", "Redwood Giants", "Athletic Vale", "Sporting Ribeira"],
    "sp_sport": ["Football", "Basketball", "Tennis", "Formula One", "Boxing", "Rugby", "Cycling"],
    "sp_cup": ["Champions Cup", "League Final", "Grand Slam", "Title Race", "World Series",
               "Super Cup"],
    "fi_workout": ["HIIT", "Yoga", "Pilates", "Core", "Kettlebell", "Cardio", "Mobility"],
    "fi_audience": ["Beginners", "Runners", "Busy Parents", "Back Pain", "Seniors", "Athletes"],
    "fi_coach": ["Coach Mia", "Jordan", "Coach Rafael", "Sasha", "Coach Bree"],
    "fi_num": ["7", "10", "14", "21", "28", "30"],
    # true crime / mystery
    "tc_surname": ["Hargrove", "Delaney", "Whitmore", "Castillo", "McBride", "Novak", "Ashford",
                   "Pruitt", "Lindell"],
    "tc_victim": ["Ellie Marsh", "Danny Cole", "the Parker Twins", "Jenny Hale", "Laura Quinn",
                  "the Miller Family"],
    "tc_town": ["Cedar Falls", "Pine Ridge", "Bakersville", "Lake Arrow", "Millbrook", "Red Bluff",
                "Harlan County"],
    "tc_nick": ["Riverside", "Midnight", "Highway", "Lonely Hearts", "Green Ribbon", "Campus",
                "Postcard"],
    "m_place": ["Ashcombe Abbey", "the Larkspur Hotel", "Whitcliff Village", "Fenwick Hall",
                "Pemberly Cove", "the Orient Pier"],
    "m_transport": ["Night Ferry", "Highland Express", "River Cruise", "Last Tram"],
    "m_room": ["Library", "Conservatory", "Wine Cellar", "Greenhouse", "Vicarage"],
    "m_object": ["Missing Locket", "Poisoned Pen", "Silver Key", "Forged Will", "Broken Clock"],
    # music
    "mu_band": ["The Velvet Owls", "Neon Harbor", "Marisol Vega", "The Static Kings", "Juno Rivers",
                "Brass Avenue", "Echo Parade", "Ada Monroe Trio", "The Lanterns"],
    "mu_venue": ["the Roundhouse", "Red Rock Amphitheatre", "Royal Albert Hall", "Madison Hall",
                 "the Paradiso", "Blue Note Club", "Glastonbury Fields"],
    "mu_genre": ["Jazz", "Indie Rock", "Soul", "Electronic", "Blues", "Classical", "Folk", "Hip-Hop"],
    "mu_album": ["Midnight Radio", "Paper Skies", "Golden Static", "Northern Lights",
                 "Velvet Thunder", "Slow Fire", "Glass Hearts"],
    "mu_year": ["2023", "2024", "2025"],
    # shop
    "kt_brand": ["Copperline", "Hearth & Co", "Maison Cuisine", "KitchenCraft Pro", "Olivewood",
                 "Forge & Flame"],
    "kt_item": ["Cast Iron Skillet", "Chef's Knife", "Dutch Oven", "Sourdough Starter Kit",
                "Pasta Maker", "Spice Rack Set", "Bamboo Cutting Board", "Stand Mixer",
                "Non-Stick Frying Pan", "Ramen Bowl Set", "Pizza Stone", "Herb Garden Kit",
                "Wok", "Baking Tray Set", "Mortar and Pestle", "Apron"],
    "ft_brand": ["IronCore", "ZenFlex", "PulseFit", "Stride"],
    "ft_item": ["Yoga Mat", "Adjustable Dumbbells", "Resistance Band Set", "Foam Roller",
                "Kettlebell", "Jump Rope", "Pull-Up Bar", "Gym Gloves"],
}

# A group: categories always present ("cats"), optional extra categories, title and description
# templates with {slot} fillers from _W, the item kind (movie / series / product), runtime range in
# minutes and the price list.
_RENT = [2.99, 3.99, 4.99, 5.99]
_BUY = [9.99, 12.99, 14.99, 19.99]
_SEASON = [14.99, 19.99, 24.99]

GROUPS: dict[str, dict[str, Any]] = {
    "horror": dict(
        n=42, kind="movie", runtime=(80, 115), price=_RENT + _BUY,
        cats=["Horror"], extra=["Thriller", "Supernatural", "Mystery"],
        pairs=[
            ("The Haunting of {h_place}",
             ["A grieving family moves into {h_place} and soon learns that a malevolent ghost haunts its dark hallways.",
              "A slow-burn ghost story of haunted rooms, whispering voices and the evil that waits inside {h_place}."]),
            ("Night of the {h_monster}",
             ["When teenagers vanish near {h_place}, a sheriff must face the {h_monster} in a night of blood, screams and terror.",
              "Trapped in a remote cabin during a storm, a group of friends are hunted one by one by the {h_monster}."]),
            ("The {h_monster} of {h_place}",
             ["Villagers at {h_place} whisper about the {h_monster}, and this terrifying horror film shows why they lock their doors at night.",
              "A paranormal investigator spends one night at {h_place} and finds the {h_monster} is real in this gory horror movie."]),
            ("Don't Open the {h_thing}",
             ["Nobody who opens the {h_thing} at {h_place} survives until dawn in this gory, terrifying horror movie.",
              "A babysitter ignores one rule, never open the {h_thing}, and unleashes a demon in this supernatural horror film."]),
            ("Whispers in the {h_dark}",
             ["Something crawls in the {h_dark} of an old farmhouse, and every night the screams grow closer.",
              "A supernatural horror film about a demonic curse, a possessed child and the exorcist who tries to save her."]),
            ("The Curse of {h_place}",
             ["A cursed bloodline, a haunted estate and a ghostly bride bring death to every heir of {h_place}."]),
            ("{h_place}: The Possession",
             ["A priest is called to {h_place} when a young girl is possessed by a demon in this chilling exorcism horror."]),
            ("They Came from the {h_dark}",
             ["Flesh-eating creatures rise from the {h_dark} of a small town in this bloody monster horror movie."]),
            ("Bloodmoon at {h_place}",
             ["Under a blood moon, a masked killer stalks the guests of {h_place} in this slasher horror film."]),
            ("The {h_monster} Returns",
             ["Twenty years after the massacre, the {h_monster} returns to hunt the survivors in this horror sequel full of scares."]),
        ]),
    "thriller": dict(
        n=30, kind="movie", runtime=(95, 125), price=_RENT + _BUY,
        cats=["Thriller"], extra=["Crime", "Drama", "Action"],
        pairs=[
            ("The {t_adj} {t_noun}",
             ["A tense psychological thriller in which a {t_role} uncovers a deadly conspiracy and must trust no one.",
              "A cat-and-mouse suspense thriller about a {t_role}, a missing witness and a killer who is always one step ahead."]),
            ("The Stranger in {t_place}",
             ["When a {t_role} witnesses a murder in {t_place}, every choice becomes a race against time."]),
            ("Dead {t_noun}",
             ["A gripping thriller of blackmail, surveillance and betrayal in which a {t_role} is framed for a crime."]),
            ("The {t_noun} Conspiracy",
             ["A {t_role} stumbles onto a government cover-up and is hunted by assassins in this political suspense thriller."]),
            ("Midnight in {t_place}",
             ["One night in {t_place}, a {t_role} receives an anonymous call and is drawn into a deadly game of secrets."]),
        ]),
    "action": dict(
        n=28, kind="movie", runtime=(95, 135), price=_RENT + _BUY,
        cats=["Action"], extra=["Thriller", "Adventure"],
        pairs=[
            ("Operation {a_code}",
             ["A retired commando is pulled back for Operation {a_code}, a one-man war against an arms cartel.",
              "An explosive action movie: an ex-special forces soldier fights mercenaries through car chases, shootouts and explosions."]),
            ("Maximum {a_force}",
             ["A high-octane heist with fistfights, helicopter chases and a double-crossing crew led by a rogue agent."]),
            ("{a_code} Protocol",
             ["Non-stop martial arts, motorbike stunts and gunfights as an elite squad races to stop a bomb."]),
            ("Rogue {a_force}",
             ["A disavowed agent goes rogue and battles his former team across three continents in this explosive action thriller."]),
            ("Lethal {a_force}",
             ["Two mismatched cops take on a drug lord with car chases, shootouts and explosive stunts."]),
            ("Code Name: {a_code}",
             ["A mercenary known only as {a_code} fights through an army of gunmen to rescue a kidnapped diplomat."]),
        ]),
    "kids": dict(
        n=40, kind="series", runtime=(11, 24), price=_SEASON,
        cats=["Kids", "Animation"], extra=["Family", "Musical"],
        pairs=[
            ("{k_name} the Brave Little {k_animal}",
             ["An animated series for preschoolers in which {k_name} the {k_animal} learns about {k_value} with songs and cartoon friends."]),
            ("{k_name} and the {k_magic} {k_thing}",
             ["{k_name} finds a {k_magic|lower} {k_thing|lower} and sets off on cheerful cartoon adventures in this animated show for young children."]),
            ("The {k_adj} Adventures of {k_name}",
             ["Colorful cartoon adventures for kids full of giggles, sing-alongs and gentle lessons about {k_value}."]),
            ("{k_animal} Academy",
             ["Little animals learn {k_value} at a magical school in this gentle animated series for toddlers."]),
            ("Bedtime Stories with {k_name}",
             ["Soothing animated bedtime stories and lullabies for little kids, told by {k_name} the {k_animal}."]),
            ("{k_name}'s {k_magic} Garden",
             ["{k_name} and friends explore a magical garden playground in this cheerful animated show for preschool children."]),
            ("Little {k_animal}s Go to School",
             ["A cuddly little {k_animal|lower} and best friends solve silly problems in short, funny cartoon episodes for toddlers."]),
        ]),
    "family": dict(
        n=26, kind="movie", runtime=(80, 105), price=_RENT + _BUY,
        cats=["Family"], extra=["Comedy", "Animation", "Adventure"],
        pairs=[
            ("The {f_surname} Family Vacation",
             ["A heartwarming family film about the {f_surname} kids and their chaotic road trip, perfect for parents and children to watch together."]),
            ("A Dog Named {f_dog}",
             ["A funny, feel-good family adventure in which a clumsy dog named {f_dog} helps three siblings save their home."]),
            ("The Great {f_thing} Race",
             ["Kids, grandparents and a mischievous puppy team up to win the great {f_thing|lower} race in this gentle family comedy."]),
            ("My Grandpa the {f_job}",
             ["A warm family comedy about a boy who discovers that his grandpa secretly works as a {f_job|lower}."]),
            ("The Secret of {f_place} Farm",
             ["Two children spend a magical summer at {f_place} Farm with talking animals in this family adventure for all ages."]),
            ("{f_dog} Saves Christmas",
             ["A lovable family dog named {f_dog} rescues Christmas for the whole neighbourhood in this festive family movie."]),
        ]),
    "doc_nature": dict(
        n=32, kind="series", runtime=(45, 60), price=_SEASON,
        cats=["Documentary", "Nature"], extra=["Wildlife", "Science"],
        pairs=[
            ("Wild {n_habitat}",
             ["A breathtaking nature documentary following {n_animals|lower} across the {n_habitat}, filmed over three years by wildlife camera crews."]),
            ("Secrets of the {n_habitat}",
             ["Stunning footage of ecosystems, animal migration and climate change in the {n_habitat}."]),
            ("Planet {n_habitat}",
             ["Narrated by a renowned naturalist, this wildlife documentary reveals how animals survive in the {n_habitat}."]),
            ("The Last {n_animals}",
             ["Scientists and wildlife photographers track endangered {n_animals|lower} through the seasons of the {n_habitat}."]),
            ("{n_habitat}: A Year in the Wild",
             ["A nature documentary series following the wildlife of the {n_habitat} through one year of drought, floods and births."]),
            ("Kingdom of the {n_animals}",
             ["An intimate wildlife documentary about a family of {n_animals|lower}, their hunts, their young and their fight to survive."]),
        ]),
    "doc_history": dict(
        n=30, kind="series", runtime=(45, 60), price=_SEASON,
        cats=["Documentary", "History"], extra=["War", "Biography"],
        pairs=[
            ("The Rise and Fall of {d_empire}",
             ["A historical documentary series exploring {d_empire} through archival records, maps and interviews with leading historians."]),
            ("{d_war}: The Untold Story",
             ["Using rare archive film and expert historians, this documentary retells {d_war|lower} from the soldiers' perspective."]),
            ("Lost Cities of {d_region}",
             ["Archaeologists and historians uncover the ancient civilizations of {d_region} in this history documentary."]),
            ("Inside {d_era}",
             ["A history documentary series on the kings, battles and inventions that shaped {d_era}."]),
            ("{d_war} in Colour",
             ["Restored and colourised archive footage brings {d_war|lower} to life in this acclaimed history documentary."]),
            ("Treasures of {d_empire}",
             ["Historians and archaeologists examine the palaces, tombs and treasures of {d_empire} in this documentary."]),
        ]),
    "romance": dict(
        n=42, kind="movie", runtime=(92, 120), price=_RENT + _BUY,
        cats=["Romance"], extra=["Drama", "Comedy"],
        pairs=[
            ("Love in {r_city}",
             ["A romantic love story about a {r_job} who falls for a charming stranger during one unforgettable {r_season|lower} in {r_city}."]),
            ("The {r_season} We Met",
             ["Two former sweethearts reunite one {r_season|lower} and must decide whether their love deserves a second chance."]),
            ("A Wedding in {r_city}",
             ["A sweet romantic comedy of first dates, heartbreak, kisses and a wedding in {r_city} that nobody expected."]),
            ("Letters to {r_name}",
             ["A passionate love affair between a {r_job} and a married writer, told through the love letters they send to {r_name}."]),
            ("Falling for {r_name}",
             ["A shy {r_job} falls head over heels for {r_name} in this sweet, swoony romantic comedy."]),
            ("Kiss Me at {r_place}",
             ["Two strangers promise to meet again at {r_place|lower} in this tender romance about love at first sight."]),
            ("Meet Me in {r_city}",
             ["When {r_name} inherits a little shop in {r_city}, an unexpected romance blossoms with the handsome neighbour."]),
            ("A {r_season} Romance in {r_city}",
             ["A {r_job} on holiday in {r_city} finds true love, kisses under the stars and a reason to stay."]),
        ]),
    "drama": dict(
        n=32, kind="movie", runtime=(100, 140), price=_RENT + _BUY,
        cats=["Drama"], extra=["Romance", "Family"],
        pairs=[
            ("The {dr_surname}",
             ["An emotional drama about the {dr_surname}, a family torn apart by grief, old secrets and a contested inheritance."]),
            ("Still {dr_noun}",
             ["An award-winning drama about love, loss and forgiveness between an estranged father and his son."]),
            ("A Quiet {dr_noun}",
             ["A moving character drama following a widowed mother who rebuilds her life and learns to love again."]),
            ("The House on {dr_street}",
             ["Three sisters return to the house on {dr_street} and confront the past in this tender, heartfelt drama."]),
            ("After the {dr_event}",
             ["A small town and a marriage struggle to heal after the {dr_event|lower} in this powerful emotional drama."]),
            ("What Remains of {r_name}",
             ["A heartbreaking drama about grief and memory as a husband rediscovers his late wife {r_name} through her diaries."]),
        ]),
    "comedy": dict(
        n=30, kind="movie", runtime=(85, 105), price=_RENT + _BUY,
        cats=["Comedy"], extra=["Stand-Up", "Sitcom"],
        pairs=[
            ("{c_job}s Behaving Badly",
             ["A laugh-out-loud comedy about a hopeless {c_job|lower} whose {c_event|lower} goes hilariously wrong."]),
            ("My {c_relative} the {c_job}",
             ["A silly, hilarious comedy about a {c_relative|lower} who becomes a {c_job|lower} and ruins everything."]),
            ("{c_comedian}: Live and Unfiltered",
             ["Stand-up comedian {c_comedian} delivers an hour of jokes about dating, parents and awkward small talk."]),
            ("The Worst {c_event} Ever",
             ["Pranks, slapstick and cringe humour collide on the worst {c_event|lower} ever in this goofy comedy."]),
            ("{c_comedian}: No Filter",
             ["In this stand-up comedy special, {c_comedian} roasts the audience, airport queues and family holidays."]),
        ]),
    "scifi": dict(
        n=40, kind="movie", runtime=(100, 145), price=_RENT + _BUY,
        cats=["Sci-Fi"], extra=["Space", "Adventure", "Action"],
        pairs=[
            ("{s_planet} Rising",
             ["Colonists on {s_planet} fight to survive when their terraforming robots turn against them."]),
            ("Starship {s_ship}",
             ["In the year {s_year}, the crew of the starship {s_ship} discovers an alien signal at the edge of the galaxy."]),
            ("Echoes of {s_planet}",
             ["A cerebral science fiction film about artificial intelligence, time travel and a lost expedition to {s_planet}."]),
            ("Beyond the {s_cosmic}",
             ["A space opera of interstellar war, cyborgs and faster-than-light travel beyond the {s_cosmic|lower}."]),
            ("Android {s_ship}",
             ["An android built for deep-space missions begins to question its programming in this futuristic sci-fi thriller."]),
            ("The Last Colony on {s_planet}",
             ["Astronauts trapped on {s_planet} face alien life and a failing spaceship in this science fiction epic."]),
            ("{s_cosmic} {s_year}",
             ["In {s_year}, a physicist discovers a {s_cosmic|lower} that could save or destroy humanity in this sci-fi adventure."]),
        ]),
    "fantasy": dict(
        n=32, kind="series", runtime=(50, 65), price=_SEASON,
        cats=["Fantasy"], extra=["Adventure", "Magic"],
        pairs=[
            ("The Dragon of {fa_realm}",
             ["An epic fantasy saga of dragons, wizards and ancient prophecies in the kingdom of {fa_realm}."]),
            ("Chronicles of {fa_realm}",
             ["Rival houses battle for the throne of {fa_realm} while dragons awaken in this medieval fantasy series."]),
            ("The Last {fa_mage}",
             ["A young {fa_mage|lower} must unite elves, dwarves and men before the dark lord returns to {fa_realm}."]),
            ("Crown of {fa_material}",
             ["Sword-and-sorcery adventure about a stolen crown of {fa_material|lower}, magic spells and a quest across enchanted lands."]),
            ("The {fa_material} Sword",
             ["A farm boy draws the enchanted {fa_material|lower} sword and is pulled into a war of wizards and dragons."]),
            ("The Witch of {fa_realm}",
             ["A banished witch, a cursed prince and an army of trolls collide in this dark fantasy series set in {fa_realm}."]),
        ]),
    "cooking": dict(
        n=44, kind="series", runtime=(22, 45), price=_SEASON,
        cats=["Cooking"], extra=["Food & Travel", "Lifestyle", "Baking"],
        pairs=[
            ("{ck_chef}'s Kitchen",
             ["A cooking show where {ck_chef} shares easy {ck_cuisine} recipes, from fresh pasta and curries to quick weeknight dinners."]),
            ("30-Minute {ck_cuisine} Dinners",
             ["Step-by-step {ck_cuisine} recipes, kitchen tips and shortcuts for home cooks who want dinner on the table in thirty minutes."]),
            ("The Great {ck_region} Bake Off",
             ["Home bakers compete to create cakes, breads and pastries in a friendly {ck_region} baking competition."]),
            ("Street Food: {ck_city}",
             ["A culinary travel series tasting street food, spice markets and family recipes in {ck_city}."]),
            ("Knife Skills with {ck_chef}",
             ["{ck_chef} teaches chopping, filleting and kitchen basics so home cooks can prepare any recipe with confidence."]),
            ("{ck_cuisine} Home Cooking",
             ["Traditional {ck_cuisine} recipes cooked at home: ingredients, spices, seasoning and plating explained step by step."]),
            ("{ck_dish} Masterclass",
             ["{ck_chef} teaches the secrets of perfect {ck_dish|lower}: ingredients, seasoning and cooking techniques for home cooks."]),
            ("Weeknight {ck_dish} with {ck_chef}",
             ["Quick, healthy {ck_dish|lower} recipes for busy families, cooked in one pan by {ck_chef}."]),
        ]),
    "sports": dict(
        n=40, kind="movie", runtime=(90, 120), price=_RENT + _BUY,
        cats=["Sports"], extra=["Football", "Live", "Documentary"],
        pairs=[
            ("{sp_team}: All or Nothing",
             ["A sports documentary following {sp_team} through a season of training, injuries and championship matches."]),
            ("Matchday Live: {sp_team} vs {sp_team}",
             ["Live coverage of {sp_team} against their rivals, with full match commentary, goals, replays and post-game analysis."]),
            ("Road to the {sp_cup}",
             ["Every goal, tackle and penalty on the road to the {sp_cup}, with expert pundits and tactical breakdowns."]),
            ("{sp_sport} Legends",
             ["The greatest {sp_sport|lower} athletes, matches and comebacks of all time, with interviews from players and coaches."]),
            ("Derby Day: {sp_team} vs {sp_team}",
             ["The full derby match with live commentary, stadium atmosphere, goals and a heated second half."]),
            ("{sp_cup} Highlights",
             ["All the goals, saves and trophy celebrations from the {sp_cup} in one extended highlights show."]),
            ("Inside the Locker Room: {sp_team}",
             ["Behind the scenes with the players and coach of {sp_team} before, during and after the big match."]),
        ]),
    "fitness": dict(
        n=24, kind="series", runtime=(15, 45), price=_SEASON,
        cats=["Fitness"], extra=["Lifestyle", "Wellness"],
        pairs=[
            ("{fi_num}-Day {fi_workout} Challenge",
             ["A guided home workout program of {fi_workout} routines, cardio and strength training led by {fi_coach}."]),
            ("Yoga for {fi_audience}",
             ["Low-impact yoga, stretching and breathing sessions for {fi_audience|lower} to build flexibility, balance and mindfulness."]),
            ("{fi_workout} with {fi_coach}",
             ["Short, sweaty {fi_workout} exercise classes with {fi_coach}: warm-up, intervals, core work and cool-down."]),
            ("Core Strength for {fi_audience}",
             ["A progressive core and strength training plan for {fi_audience|lower}, with planks, squats and mobility drills."]),
        ]),
    "true_crime": dict(
        n=40, kind="series", runtime=(42, 60), price=_SEASON,
        cats=["True Crime", "Documentary"], extra=["Crime", "Mystery"],
        pairs=[
            ("The {tc_surname} Murders",
             ["A true crime documentary investigating the unsolved murders of the {tc_surname} family, with detectives, court records and interviews."]),
            ("Who Killed {tc_victim}?",
             ["Forensic evidence, interrogation tapes and prison interviews reveal what really happened to {tc_victim}."]),
            ("Cold Case: {tc_town}",
             ["Investigative journalists reopen a decades-old cold case in {tc_town} and uncover police mistakes and a hidden suspect."]),
            ("The {tc_nick} Killer",
             ["A real-life crime series about the {tc_nick} serial killer, the FBI manhunt and the trial that gripped the nation."]),
            ("Murder in {tc_town}",
             ["A true crime docuseries about a shocking murder in {tc_town}, the investigation, the suspects and the verdict."]),
            ("Vanished: The {tc_surname} Case",
             ["A mother disappears without a trace, and this true crime documentary follows detectives and family for twenty years."]),
            ("Evidence: The {tc_surname} Trial",
             ["Courtroom footage, DNA evidence and police interviews from the murder trial of {tc_surname} in this true crime series."]),
        ]),
    "mystery": dict(
        n=26, kind="series", runtime=(45, 90), price=_SEASON,
        cats=["Mystery"], extra=["Crime", "Drama"],
        pairs=[
            ("Inspector {tc_surname} Investigates",
             ["A classic whodunit in which Inspector {tc_surname} interrogates suspects, follows clues and solves a murder at {m_place}."]),
            ("Murder at {m_place}",
             ["A body is found in the {m_room|lower} and every guest at {m_place} is a suspect in this murder mystery."]),
            ("Death on the {m_transport}",
             ["A detective on the {m_transport} must unmask a poisoner among the passengers before the journey ends."]),
            ("Miss {tc_surname} and the {m_object}",
             ["A cozy detective mystery with poisoned tea, a {m_object|lower} and a clever amateur sleuth named Miss {tc_surname}."]),
        ]),
    "music": dict(
        n=34, kind="movie", runtime=(60, 120), price=_RENT + _BUY,
        cats=["Music", "Concerts"], extra=["Live", "Documentary"],
        pairs=[
            ("{mu_band}: Live at {mu_venue}",
             ["A live concert film of {mu_band} performing their greatest hits at {mu_venue}, with guitars, drums and a roaring crowd."]),
            ("{mu_genre} Nights at {mu_venue}",
             ["An evening of {mu_genre} songs, live vocals and improvised solos recorded in front of a sold-out audience."]),
            ("Unplugged: {mu_band}",
             ["{mu_band} play an intimate acoustic concert of their best-loved songs, with strings, piano and a singalong encore."]),
            ("The Making of {mu_album}",
             ["A music documentary about the band's rise, backstage stories and the recording sessions of the album {mu_album}."]),
            ("{mu_band} World Tour {mu_year}",
             ["Filmed across twelve cities, this concert film captures the songs, stage shows and fans of the {mu_year} world tour."]),
        ]),
    # ---- shop products ----
    "kitchen_shop": dict(
        n=40, kind="product", price=(14.99, 149.99),
        cats=["Cooking", "Kitchenware"], extra=["Shop"],
        pairs=[
            ("{kt_brand} {kt_item}",
             ["Kitchen essential for home cooks: the {kt_brand} {kt_item|lower} for searing, baking and everyday recipes.",
              "As used on our cooking shows, this {kt_item|lower} makes homemade meals, bread and pasta easier.",
              "A durable {kt_item|lower} for chefs and food lovers who cook from scratch every day."]),
        ]),
    "toy_shop": dict(
        n=32, kind="product", price=(7.99, 39.99),
        cats=["Kids", "Toys"], extra=["Shop"],
        pairs=[
            ("{k_name} the {k_animal} Plush Toy",
             ["A soft, cuddly toy for toddlers and preschool children featuring {k_name} the {k_animal|lower} from the cartoon."]),
            ("{k_name}'s Sticker Activity Book",
             ["Colorful activity book for kids with stickers, crayons and puzzles starring {k_name} from the animated show."]),
            ("{k_animal} Wooden Puzzle",
             ["A safe, chunky wooden puzzle for little hands, shaped like a friendly {k_animal|lower} from the kids show."]),
            ("{k_name} Bath Toy Set",
             ["Squeaky, floating bath toys for babies and toddlers featuring {k_name} and cartoon friends."]),
            ("{k_name} and Friends Picture Book",
             ["A picture book for children about {k_name} learning {k_value}, based on the animated series."]),
        ]),
    "sports_shop": dict(
        n=30, kind="product", price=(19.99, 89.99),
        cats=["Sports", "Sportswear"], extra=["Shop"],
        pairs=[
            ("{sp_team} Home Jersey",
             ["Replica football kit of {sp_team} with the club crest and breathable fabric, worn by fans on match day."]),
            ("{sp_team} Away Jersey",
             ["The official away shirt of {sp_team}, the same design the players wear in the stadium."]),
            ("{sp_team} Supporter Scarf",
             ["Official fan merchandise for {sp_team} supporters, knitted in club colours for cold match days."]),
            ("{sp_team} Official Match Ball",
             ["A professional football signed by the {sp_team} squad, for fans and players alike."]),
            ("{sp_cup} Commemorative Ball",
             ["Celebrate the {sp_cup} with an official commemorative football for every sports fan."]),
        ]),
    "fitness_shop": dict(
        n=16, kind="product", price=(12.99, 199.99),
        cats=["Fitness", "Equipment"], extra=["Shop"],
        pairs=[
            ("{ft_brand} {ft_item}",
             ["Home gym equipment for strength training, yoga and cardio workouts: the {ft_brand} {ft_item|lower}.",
              "A sturdy {ft_item|lower} for daily exercise, stretching and workout routines at home."]),
        ]),
    "vinyl_shop": dict(
        n=26, kind="product", price=(24.99, 44.99),
        cats=["Music", "Vinyl"], extra=["Shop"],
        pairs=[
            ("{mu_band} - {mu_album} (Vinyl LP)",
             ["Limited edition vinyl record of the album {mu_album} by {mu_band}, with sleeve notes and bonus live tracks."]),
            ("{mu_band} - Live at {mu_venue} (Double Vinyl)",
             ["Audiophile pressing of the concert recording at {mu_venue}, with a gatefold sleeve and lyrics."]),
        ]),
    "scifi_shop": dict(
        n=20, kind="product", price=(14.99, 99.99),
        cats=["Sci-Fi", "Collectibles"], extra=["Shop"],
        pairs=[
            ("Starship {s_ship} Model Kit",
             ["Collectible for science fiction fans: a detailed spaceship replica of the starship {s_ship}."]),
            ("{s_planet} Colony Poster",
             ["Limited edition sci-fi art print of the colony on {s_planet}, with alien moons and starships."]),
            ("Android {s_ship} Action Figure",
             ["A poseable action figure of the android from the space saga, with a laser rifle and display stand."]),
        ]),
    "fantasy_books": dict(
        n=18, kind="product", price=(9.99, 29.99),
        cats=["Books", "Fantasy"], extra=["Shop"],
        pairs=[
            ("The {fa_realm} Saga: Book One",
             ["An epic fantasy novel of dragons, sorcery and a quest to save {fa_realm}."]),
            ("The {fa_realm} Saga: Book Two",
             ["The second fantasy novel of the saga, as wizards and dragons go to war over {fa_realm}."]),
            ("The Last {fa_mage}: A Novel",
             ["A sweeping fantasy novel about the last {fa_mage|lower}, an ancient prophecy and a magic sword."]),
            ("Crown of {fa_material}: Illustrated Edition",
             ["The illustrated companion book to the fantasy series, with maps of the realm, its dragons and its magic."]),
        ]),
    "romance_books": dict(
        n=20, kind="product", price=(7.99, 19.99),
        cats=["Books", "Romance"], extra=["Shop"],
        pairs=[
            ("Love in {r_city}: A Novel",
             ["A heartwarming romance novel about love, longing and a second chance in {r_city}."]),
            ("The {r_season} Letters",
             ["The bestselling love story behind the romantic movie, now in paperback."]),
            ("{r_name}'s Second Chance",
             ["A swoony romance novel in which {r_name} falls in love again with the one who got away."]),
        ]),
    "crime_books": dict(
        n=18, kind="product", price=(9.99, 24.99),
        cats=["Books", "True Crime"], extra=["Shop"],
        pairs=[
            ("The {tc_surname} Case: A True Story",
             ["A journalist's true crime book about the {tc_surname} murders, the detectives and the trial."]),
            ("Blood in {tc_town}: A True Crime Account",
             ["The true story of the killings in {tc_town}, based on police files and prison interviews."]),
            ("Hunting the {tc_nick} Killer",
             ["A former FBI profiler recounts the manhunt for the {tc_nick} serial killer in this true crime book."]),
        ]),
    "horror_shop": dict(
        n=16, kind="product", price=(12.99, 59.99),
        cats=["Horror", "Collectibles"], extra=["Shop"],
        pairs=[
            ("{h_monster} Latex Mask",
             ["A creepy horror mask for fans of monsters and slashers: the {h_monster} from the film."]),
            ("The Haunting of {h_place} Poster",
             ["Limited edition horror movie poster, perfect for a haunted Halloween display."]),
            ("{h_monster} Collector Figure",
             ["A hand-painted horror collectible figure of the {h_monster}, with a coffin display case."]),
        ]),
    "nature_books": dict(
        n=14, kind="product", price=(19.99, 49.99),
        cats=["Books", "Nature"], extra=["Shop", "Wildlife"],
        pairs=[
            ("Field Guide to the {n_habitat}",
             ["A richly illustrated field guide to the animals, plants and landscapes of the {n_habitat}."]),
            ("{n_animals} of the {n_habitat}: A Photographic Journey",
             ["A book of wildlife photography and natural history, following {n_animals|lower} through the {n_habitat}."]),
        ]),
}

GROUP_NAMES = list(GROUPS)
_GI = {g: i for i, g in enumerate(GROUP_NAMES)}

# --------------------------------------------------------------------------------------------------
# Personas. `core` and `secondary` are weights over item groups; what remains up to 1 is spread
# evenly over all groups (personal side interests). Hours are mixtures of (peak hour, width, weight);
# weekdays run Monday..Sunday.
# --------------------------------------------------------------------------------------------------

PERSONAS: dict[str, dict[str, Any]] = {
    "romance_drama_fans": dict(
        share=0.28, label="Romance & drama bingers",
        core_categories=["Romance", "Drama"], secondary_categories=["Comedy", "Family"],
        core={"romance": 0.44, "drama": 0.28, "romance_books": 0.06},
        secondary={"comedy": 0.05, "family": 0.02},
        hours=[(21.5, 1.5, 1.0), (13, 1.5, 0.2)], weekdays=[1, 1, 1, 1.05, 1.1, 1.05, 1.3],
        events_median=19, rating_p=0.22, rating_mu=4.1, rent_p=0.04, buy_p=0.2, completion=(6, 1.5),
        countries={"US": 3, "ES": 2, "IT": 2, "MX": 2, "BR": 2}, channels={"organic_search": 2, "social_ads": 1},
    ),
    "family_kids": dict(
        share=0.18, label="Families with young kids",
        core_categories=["Kids", "Animation", "Family"], secondary_categories=["Comedy", "Fantasy"],
        core={"kids": 0.50, "family": 0.22, "toy_shop": 0.10},
        secondary={"comedy": 0.04, "fantasy": 0.02},
        hours=[(16.5, 1.5, 1.0), (9, 1.5, 0.6), (19, 0.8, 0.3)], weekdays=[0.8, 0.8, 0.9, 0.8, 0.9, 1.9, 1.9],
        events_median=21, rating_p=0.08, rating_mu=4.0, rent_p=0.05, buy_p=0.35, completion=(5, 1.5),
        countries={"US": 3, "MX": 1, "BR": 1, "GB": 1}, channels={"app_store": 2, "tv_partner": 1},
    ),
    "scifi_fantasy_fans": dict(
        share=0.14, label="Sci-fi & fantasy fans",
        core_categories=["Sci-Fi", "Fantasy"], secondary_categories=["Action"],
        core={"scifi": 0.40, "fantasy": 0.26, "scifi_shop": 0.07, "fantasy_books": 0.05},
        secondary={"action": 0.06},
        hours=[(22, 1.8, 1.0)], weekdays=[0.9, 0.9, 0.9, 1, 1.3, 1.4, 1.1],
        events_median=20, rating_p=0.3, rating_mu=3.5, rent_p=0.08, buy_p=0.3, completion=(5, 1.2),
        countries={"US": 2, "DE": 2, "PL": 2, "JP": 1}, channels={"referral": 2, "organic_search": 1},
    ),
    "true_crime_buffs": dict(
        share=0.10, label="True-crime bingers",
        core_categories=["True Crime", "Mystery"], secondary_categories=["Documentary", "Thriller"],
        core={"true_crime": 0.54, "mystery": 0.20, "crime_books": 0.06},
        secondary={"thriller": 0.05, "doc_history": 0.02},
        hours=[(22.5, 1.5, 1.0), (12.5, 1.0, 0.3)], weekdays=[1.1, 1.1, 1.1, 1.1, 0.9, 0.8, 1.0],
        events_median=24, rating_p=0.2, rating_mu=3.8, rent_p=0.04, buy_p=0.2, completion=(7, 1.2),
        countries={"US": 2, "GB": 2, "AU": 2, "CA": 2}, channels={"social_ads": 1, "organic_search": 1},
    ),
    "home_cooks": dict(
        share=0.08, label="Home cooks (growing)",
        core_categories=["Cooking"], secondary_categories=["Fitness"],
        core={"cooking": 0.62, "kitchen_shop": 0.18},
        secondary={"fitness": 0.03, "fitness_shop": 0.01},
        hours=[(17.5, 1.2, 1.0), (11, 1.2, 0.5)], weekdays=[0.9, 0.9, 0.9, 0.9, 1, 1.4, 1.5],
        events_median=18, rating_p=0.3, rating_mu=4.2, rent_p=0.05, buy_p=0.4, completion=(4, 2),
        countries={"IT": 2, "FR": 2, "US": 2, "ES": 1}, channels={"social_ads": 4},
        growing=True,
    ),
    "sports_fans": dict(
        share=0.06, label="Live-sports fans (churning)",
        core_categories=["Sports"], secondary_categories=["Fitness", "Action"],
        core={"sports": 0.64, "sports_shop": 0.16},
        secondary={"fitness": 0.05, "action": 0.02},
        hours=[(15.5, 1.5, 1.0), (20.5, 1.0, 0.8)], weekdays=[0.6, 1.0, 1.1, 0.7, 0.7, 2.2, 2.0],
        events_median=17, rating_p=0.07, rating_mu=3.6, rent_p=0.12, buy_p=0.35, completion=(6, 1),
        countries={"GB": 3, "ES": 2, "BR": 2, "IT": 2}, channels={"promo_bundle": 4},
        churning=True,
    ),
    "horror_night_owls": dict(
        share=0.045, label="Horror night owls",
        core_categories=["Horror"], secondary_categories=["Thriller", "Mystery"],
        core={"horror": 0.70, "horror_shop": 0.08},
        secondary={"thriller": 0.07, "mystery": 0.02},
        hours=[(1.0, 1.6, 1.0), (22.5, 1.0, 0.4)], weekdays=[0.8, 0.8, 0.9, 1, 1.5, 1.6, 1.0],
        events_median=20, rating_p=0.35, rating_mu=3.2, rent_p=0.07, buy_p=0.25, completion=(4, 1.5),
        countries={"US": 3, "MX": 2}, channels={"referral": 1, "social_ads": 1},
    ),
    "documentary_lovers": dict(
        share=0.04, label="Documentary lovers",
        core_categories=["Documentary", "Nature", "History"], secondary_categories=["True Crime", "Music"],
        core={"doc_nature": 0.42, "doc_history": 0.32, "nature_books": 0.05},
        secondary={"true_crime": 0.03, "music": 0.02},
        hours=[(8, 1.2, 0.6), (20, 1.5, 1.0)], weekdays=[1, 1, 1, 1, 0.9, 1, 1.4],
        events_median=17, rating_p=0.4, rating_mu=4.0, rent_p=0.05, buy_p=0.15, completion=(6, 1.5),
        countries={"DE": 3, "GB": 2, "SE": 2, "NL": 1}, channels={"tv_partner": 2, "organic_search": 1},
    ),
    "music_lovers": dict(
        share=0.025, label="Live-music & vinyl collectors",
        core_categories=["Music", "Concerts"], secondary_categories=["Comedy", "Documentary"],
        core={"music": 0.62, "vinyl_shop": 0.17},
        secondary={"comedy": 0.04, "doc_history": 0.02},
        hours=[(22.5, 1.8, 1.0), (18, 1.0, 0.3)], weekdays=[0.7, 0.8, 0.8, 1, 1.6, 1.7, 1.0],
        events_median=15, rating_p=0.2, rating_mu=4.3, rent_p=0.1, buy_p=0.45, completion=(5, 1.2),
        countries={"US": 2, "DE": 2, "JP": 2, "GB": 1}, channels={"referral": 2},
    ),
}
NOISE_SHARE = 0.05
NOISE = dict(
    hours=[(14, 5.0, 1.0)], weekdays=[1, 1, 1, 1, 1, 1.1, 1.1],
    events_median=13, rating_p=0.15, rating_mu=3.7, rent_p=0.03, buy_p=0.15, completion=(4, 2),
    countries={}, channels={},
)

COUNTRIES = ["US", "GB", "DE", "FR", "CA", "ES", "IT", "NL", "BR", "MX", "IN", "AU", "SE", "PL", "JP"]
_COUNTRY_BASE = np.array([24, 10, 9, 7, 6, 6, 6, 4, 6, 5, 6, 4, 2, 3, 2], dtype=float)
CHANNELS = ["organic_search", "app_store", "social_ads", "referral", "tv_partner", "promo_bundle"]
_CHANNEL_BASE = np.array([30, 22, 18, 14, 9, 7], dtype=float)
_ATTR_TILT = 0.25  # share of a user's attribute drawn from the persona-specific tilt


# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------

def _fill(template: str, rng: np.random.Generator, fixed: dict[str, str]) -> str:
    """Fill {slot} and {slot|lower} from _W. A slot already in `fixed` keeps its word (so the
    description names the same place as the title); a slot used twice in one template gets two
    different words (team vs team)."""
    out, used = [], {}
    parts = template.split("{")
    out.append(parts[0])
    for part in parts[1:]:
        token, rest = part.split("}", 1)
        slot, _, mod = token.partition("|")
        if slot in fixed and slot not in used:
            word = fixed[slot]
        else:
            words = _W[slot]
            word = words[int(rng.integers(len(words)))]
            while slot in used and word == used[slot] and len(words) > 1:
                word = words[int(rng.integers(len(words)))]
        used.setdefault(slot, word)
        fixed.setdefault(slot, word)
        out.append(word.lower() if mod == "lower" else word)
        out.append(rest)
    text = "".join(out).replace("s's ", "s' ")
    return text[0].upper() + text[1:]


def _build_catalog(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    all_titles: set[str] = set()
    for g, spec in GROUPS.items():
        seen: set[str] = set()
        attempts = 0
        while len(seen) < spec["n"] and attempts < spec["n"] * 60:
            attempts += 1
            fixed: dict[str, str] = {}
            title_tpl, descs = spec["pairs"][int(rng.integers(len(spec["pairs"])))]
            title = _fill(title_tpl, rng, fixed)
            if title in seen or title in all_titles:
                continue
            seen.add(title)
            all_titles.add(title)
            desc = _fill(descs[int(rng.integers(len(descs)))], rng, fixed)
            cats = list(spec["cats"])
            room = 3 - len(cats)
            k = min(room, len(spec["extra"]), int(rng.choice([0, 1, 1, 2])))
            if k > 0:
                picks = rng.choice(len(spec["extra"]), size=k, replace=False)
                cats += [spec["extra"][int(i)] for i in sorted(picks)]
            if spec["kind"] == "product":
                lo, hi = spec["price"]
                price = float(np.round(np.exp(rng.uniform(np.log(lo), np.log(hi)))) - 0.01)
                price = max(price, lo)
                runtime = 0
            else:
                price = float(spec["price"][int(rng.integers(len(spec["price"])))])
                lo, hi = spec["runtime"]
                runtime = int(rng.integers(lo, hi + 1))
            rows.append(dict(group=g, title=title, categories="|".join(cats), description=desc,
                             price=round(price, 2), kind=spec["kind"], runtime=runtime))
    cat = pd.DataFrame(rows)
    # Shuffle so ids don't reveal genre; ids are zero-padded and issued in shuffled order.
    cat = cat.iloc[rng.permutation(len(cat))].reset_index(drop=True)
    cat.insert(0, "item_id", [f"it{i + 1:04d}" for i in range(len(cat))])
    cat["group_idx"] = cat["group"].map(_GI).astype(np.int64)
    # popularity within a group: Zipf-like weights over a random order
    cat["pop"] = 0.0
    for g in GROUP_NAMES:
        idx = np.flatnonzero(cat["group"].to_numpy() == g)
        ranks = rng.permutation(len(idx))
        cat.loc[idx, "pop"] = 1.0 / (ranks + 2.0) ** 0.8
    return cat


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def _hour_probs(mix: list[tuple[float, float, float]]) -> np.ndarray:
    h = np.arange(24) + 0.5
    p = np.full(24, 0.02)
    for center, width, weight in mix:
        d = np.abs(h - center)
        d = np.minimum(d, 24 - d)
        p += weight * np.exp(-0.5 * (d / width) ** 2)
    return p / p.sum()


def _rowwise_choice(cum: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each i, pick a column of cum[rows[i]] (a row-wise CDF ending in 1) by uniform u[i]."""
    n_rows, k = cum.shape
    flat = (cum + np.arange(n_rows)[:, None]).ravel()
    pos = np.searchsorted(flat, rows + u, side="right")
    return np.minimum(pos - rows * k, k - 1)


def _cdf(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=-1)
    c /= c[..., -1:]
    return c


def _allocate(n: int, shares: np.ndarray) -> np.ndarray:
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(int)
    counts = np.maximum(counts, 1)
    rest = n - counts.sum()
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    i = 0
    while rest != 0:
        j = order[i % len(order)]
        if rest > 0:
            counts[j] += 1
            rest -= 1
        elif counts[j] > 1:
            counts[j] -= 1
            rest += 1
        i += 1
    return counts


def _write_csv(table: pa.Table, path: Path, quote: bool) -> None:
    """Header unquoted; fields quoted only where a string column may need it."""
    opts = pacsv.WriteOptions(include_header=False, quoting_style="needed" if quote else "none")
    with open(path, "wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, fh, opts)


# --------------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------------

def generate_demo(out_dir: Path, n_users: int = 3000, seed: int = 42) -> DemoFiles:
    """Write the demo data set into `out_dir` (created if needed) and describe what was planted."""
    if n_users < MIN_USERS:
        raise SeglensError(f"the demo needs at least {MIN_USERS} users (got {n_users})",
                           hint=f"use --users {MIN_USERS} or more")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ss = np.random.SeedSequence(seed)
    rng_cat, rng_users, rng_ev, rng_attr = (np.random.default_rng(s) for s in ss.spawn(4))

    # ---- catalog ----
    cat = _build_catalog(rng_cat)
    n_items = len(cat)
    G = len(GROUP_NAMES)
    item_group = cat["group_idx"].to_numpy()
    item_runtime = cat["runtime"].to_numpy().astype(np.float64)
    item_price = cat["price"].to_numpy().astype(np.float64)
    item_is_product = (cat["kind"] == "product").to_numpy()
    # per-group item tables: sorted item indices and their popularity CDF
    grp_items = [np.flatnonzero(item_group == g) for g in range(G)]
    grp_cdf = [_cdf(cat["pop"].to_numpy()[ix]) for ix in grp_items]

    # ---- personas and users ----
    pnames = list(PERSONAS)
    P = len(pnames)
    specs = [PERSONAS[p] for p in pnames] + [NOISE]  # index P is noise
    shares = np.array([PERSONAS[p]["share"] for p in pnames] + [NOISE_SHARE])
    counts = _allocate(n_users, shares)
    persona = np.repeat(np.arange(P + 1), counts)
    persona = persona[rng_users.permutation(n_users)]

    # taste weights over groups, per persona
    taste = np.zeros((P + 1, G))
    core_mask = np.zeros((P + 1, G), dtype=bool)
    for k, name in enumerate(pnames):
        spec = PERSONAS[name]
        for g, w in {**spec["core"], **spec["secondary"]}.items():
            taste[k, _GI[g]] += w
        for g in spec["core"]:
            core_mask[k, _GI[g]] = True
        taste[k] += max(0.0, 1.0 - taste[k].sum()) / G
    taste[P] = 1.0 / G
    # each user: Dirichlet around the persona's taste (side interests become sparse, personal);
    # noise users: a sparse random mix of groups.
    alpha = np.where(persona[:, None] == P, 0.35, 40.0 * taste[persona])
    user_taste = rng_users.gamma(alpha)
    user_taste /= user_taste.sum(axis=1, keepdims=True)
    user_cdf = _cdf(user_taste)

    # lifecycles: first and last active day
    growing = np.array([bool(PERSONAS[p].get("growing")) for p in pnames] + [False])
    churning = np.array([bool(PERSONAS[p].get("churning")) for p in pnames] + [False])
    g_u, c_u = growing[persona], churning[persona]
    u1, u2, u3, u4 = (rng_users.random(n_users) for _ in range(4))
    pre_p = np.where(g_u, 0.08, np.where(c_u, 0.55, 0.40))
    start = np.where(u1 < pre_p, rng_users.integers(0, 21, n_users),
                     rng_users.integers(0, N_DAYS - 14, n_users)).astype(np.int64)
    # growing persona: joins with density rising exponentially over time (tau = 120 days)
    tau = 120.0
    grow_start = np.floor(tau * np.log1p(u2 * np.expm1((N_DAYS - 14) / tau))).astype(np.int64)
    start = np.where(g_u & (u1 >= pre_p), grow_start, start)
    # churning persona: newcomers mostly before the exodus
    start = np.where(c_u & (u1 >= pre_p), (u2 * (N_DAYS - 160)).astype(np.int64), start)
    retained = u3 < np.where(g_u, 0.8, np.where(c_u, 0.55, 0.6))
    life = np.where(retained, N_DAYS, 14 + rng_users.exponential(130.0, n_users)).astype(np.int64)
    end = np.minimum(start + life, N_DAYS - 1)
    # the churn: most members of the churning persona stop 95-130 days before the end
    cutoff = N_DAYS - 1 - rng_users.integers(95, 131, n_users)
    quit_ = c_u & (u4 < 0.82)
    end = np.where(quit_, np.minimum(end, cutoff), end)
    start = np.minimum(start, end - 10)
    start = np.maximum(start, 0)

    # number of interactions (views); heavy-tailed, fewer for short lifetimes
    med = np.array([s["events_median"] for s in specs], dtype=float)[persona]
    span = (end - start + 1) / N_DAYS
    n_views = np.exp(np.log(med) + 0.8 * rng_users.standard_normal(n_users)) * (0.55 + 0.45 * np.sqrt(span))
    n_views = np.clip(np.round(n_views), 5, 65).astype(np.int64)

    # ---- views ----
    N = int(n_views.sum())
    uidx = np.repeat(np.arange(n_users), n_views)
    p_ev = persona[uidx]
    grp = _rowwise_choice(user_cdf, uidx, rng_ev.random(N))
    item = np.empty(N, dtype=np.int64)
    u = rng_ev.random(N)
    order = np.argsort(grp, kind="stable")
    bounds = np.searchsorted(grp[order], np.arange(G + 1))
    for g in range(G):
        sel = order[bounds[g]:bounds[g + 1]]
        pos = np.minimum(np.searchsorted(grp_cdf[g], u[sel], side="right"), len(grp_items[g]) - 1)
        item[sel] = grp_items[g][pos]

    # day: uniform in the user's window, moved to a weekday drawn from the persona's week pattern
    s_ev, e_ev = start[uidx], end[uidx]
    day = s_ev + np.floor(rng_ev.random(N) * (e_ev - s_ev + 1)).astype(np.int64)
    wk_cdf = _cdf(np.array([s["weekdays"] for s in specs], dtype=float))
    target = _rowwise_choice(wk_cdf, p_ev, rng_ev.random(N))
    shifted = day + (target - day % 7) % 7
    shifted = np.where(shifted > e_ev, shifted - 7, shifted)
    day = np.where(shifted >= s_ev, shifted, day)
    hr_cdf = _cdf(np.array([_hour_probs(s["hours"]) for s in specs]))
    hour = _rowwise_choice(hr_cdf, p_ev, rng_ev.random(N))
    ts = _START_EPOCH + day * 86400 + hour * 3600 + rng_ev.integers(0, 3600, N)

    is_prod = item_is_product[item]
    is_core = core_mask[p_ev, item_group[item]]
    comp_a = np.array([s["completion"][0] for s in specs])[p_ev]
    comp_b = np.array([s["completion"][1] for s in specs])[p_ev]
    completion = rng_ev.beta(comp_a, comp_b) * np.where(is_core, 1.0, 0.7)
    minutes = np.maximum(1.0, np.round(item_runtime[item] * completion))
    view_val = np.where(is_prod, np.nan, minutes)

    # ---- ratings: after watching (or a few days after a product purchase) ----
    rate_p = np.array([s["rating_p"] for s in specs])[p_ev] * np.where(is_prod, 0.5, 1.0)
    r_sel = np.flatnonzero(rng_ev.random(N) < rate_p)
    user_bias = 0.45 * rng_users.standard_normal(n_users)
    mu = np.array([s["rating_mu"] for s in specs])[p_ev[r_sel]]
    r_raw = (mu + np.where(is_core[r_sel], 0.3, -0.6) + user_bias[uidx[r_sel]]
             + 0.85 * rng_ev.standard_normal(len(r_sel)))
    r_val = np.clip(np.round(r_raw), 1, 5)
    r_delay = np.where(is_prod[r_sel], rng_ev.integers(2 * 86400, 10 * 86400, len(r_sel)),
                       (minutes[r_sel] * 60).astype(np.int64) + rng_ev.integers(60, 1800, len(r_sel)))
    r_ts = ts[r_sel] + r_delay
    ok = r_ts <= _END_EPOCH  # a rating after the log ends is not in the log
    r_sel, r_val, r_ts = r_sel[ok], r_val[ok], r_ts[ok]

    # ---- purchases: rent/buy before watching, or buy after viewing a product page ----
    buy_p = np.where(is_prod, np.array([s["buy_p"] for s in specs])[p_ev],
                     np.array([s["rent_p"] for s in specs])[p_ev])
    b_sel = np.flatnonzero(rng_ev.random(N) < buy_p)
    discount = np.where(rng_ev.random(len(b_sel)) < 0.15,
                        rng_ev.choice(np.array([0.7, 0.75, 0.8, 0.85]), len(b_sel)), 1.0)
    b_val = np.round(item_price[item[b_sel]] * discount, 2)
    b_ts = np.where(is_prod[b_sel], ts[b_sel] + rng_ev.integers(60, 1200, len(b_sel)),
                    ts[b_sel] - rng_ev.integers(30, 600, len(b_sel)))
    ok = (b_ts >= _START_EPOCH) & (b_ts <= _END_EPOCH)
    b_sel, b_val, b_ts = b_sel[ok], b_val[ok], b_ts[ok]

    # ---- assemble, sort by time ----
    ev_user = np.concatenate([uidx, uidx[r_sel], uidx[b_sel]])
    ev_item = np.concatenate([item, item[r_sel], item[b_sel]])
    ev_ts = np.concatenate([ts, r_ts, b_ts])
    ev_kind = np.concatenate([np.zeros(N, np.int8), np.ones(len(r_sel), np.int8),
                              np.full(len(b_sel), 2, np.int8)])
    ev_val = np.concatenate([view_val, r_val, b_val])
    o = np.lexsort((ev_kind, ev_user, ev_ts))
    ev_user, ev_item, ev_ts, ev_kind, ev_val = ev_user[o], ev_item[o], ev_ts[o], ev_kind[o], ev_val[o]

    width = max(6, len(str(n_users)))
    user_ids = pa.array([f"u{i + 1:0{width}d}" for i in range(n_users)])
    item_ids = pa.array(cat["item_id"].tolist())
    kinds = pa.array(["view", "rating", "purchase"])
    # ISO 8601 "2024-05-01T19:23:11" (cast + replace is ~10x faster than pc.strftime)
    ts_str = pc.replace_substring(pc.cast(pa.array(ev_ts, pa.timestamp("s")), pa.string()), " ", "T",
                                  max_replacements=1)
    events = pa.table({
        "user_id": user_ids.take(pa.array(ev_user)),
        "item_id": item_ids.take(pa.array(ev_item)),
        "timestamp": ts_str,
        "event": kinds.take(pa.array(ev_kind)),
        "value": pa.array(ev_val, from_pandas=True),
    })

    # ---- user attributes (weakly persona-correlated) ----
    def attr_probs(base: np.ndarray, names: list[str], key: str) -> np.ndarray:
        rows = []
        for s in specs:
            tilt = np.array([s[key].get(c, 0.0) for c in names], dtype=float)
            b = base / base.sum()
            rows.append(b if tilt.sum() == 0 else (1 - _ATTR_TILT) * b + _ATTR_TILT * tilt / tilt.sum())
        return _cdf(np.array(rows))

    country = _rowwise_choice(attr_probs(_COUNTRY_BASE, COUNTRIES, "countries"), persona,
                              rng_attr.random(n_users))
    channel = _rowwise_choice(attr_probs(_CHANNEL_BASE, CHANNELS, "channels"), persona,
                              rng_attr.random(n_users))
    users = pa.table({
        "user_id": user_ids,
        "country": pa.array(COUNTRIES).take(pa.array(country)),
        "signup_channel": pa.array(CHANNELS).take(pa.array(channel)),
    })
    labels = pa.table({"user_id": user_ids,
                       "persona": pa.array(pnames + ["noise"]).take(pa.array(persona))})
    items = pa.table({
        "item_id": item_ids,
        "title": pa.array(cat["title"].tolist()),
        "categories": pa.array(cat["categories"].tolist()),
        "description": pa.array(cat["description"].tolist()),
        "price": pa.array(cat["price"].to_numpy(dtype=np.float64)),
    })

    paths = {k: out_dir / f"{k}.csv" for k in ("events", "items", "users", "labels")}
    _write_csv(events, paths["events"], quote=False)
    _write_csv(items, paths["items"], quote=True)
    _write_csv(users, paths["users"], quote=False)
    _write_csv(labels, paths["labels"], quote=False)

    # ---- description of what was planted ----
    personas_out: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(pnames):
        spec = PERSONAS[name]
        hp = _hour_probs(spec["hours"])
        personas_out[name] = dict(
            name=name,
            label=spec["label"],
            share=spec["share"],
            n_users=int(counts[k]),
            core_categories=list(spec["core_categories"]),
            secondary_categories=list(spec["secondary_categories"]),
            core_groups=list(spec["core"]),
            purity=round(float(taste[k, core_mask[k]].sum()), 3),  # expected share of core items
            peak_hours=sorted(int(h) for h in np.argsort(-hp)[:3]),
            weekday_weights=dict(zip(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                                     [float(x) for x in spec["weekdays"]])),
            median_views=spec["events_median"],
            rating_mean=spec["rating_mu"],
            growing=bool(spec.get("growing", False)),
            churning=bool(spec.get("churning", False)),
            dynamics=("growing: sign-ups accelerate in recent months" if spec.get("growing") else
                      "churning: most members go quiet 3-4 months before the end" if spec.get("churning")
                      else "steady"),
        )
    stats = dict(
        seed=seed, n_users=n_users, n_items=n_items, n_events=int(events.num_rows),
        n_noise=int(counts[P]), noise_share=NOISE_SHARE,
        start=START_DATE.isoformat(), end=END_DATE.isoformat(),
        event_counts={"view": N, "rating": int(len(r_sel)), "purchase": int(len(b_sel))},
    )
    pjson = out_dir / "personas.json"
    pjson.write_text(json.dumps({"stats": stats, "personas": list(personas_out.values())}, indent=2) + "\n")
    return DemoFiles(events=paths["events"], items=paths["items"], users=paths["users"],
                     labels=paths["labels"], personas=personas_out, personas_json=pjson, stats=stats)

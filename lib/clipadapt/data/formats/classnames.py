"""The class names of real datasets as their files write them, in their label order.

:mod:`clipadapt.data.fixtures` writes the miniature datasets with these names, so that the
loaders and :func:`clipadapt.data.names.prompt_name` meet the names the real files hold
(underscores, capitals, SUN397's reversed parts) rather than tidy stand-ins. The lists follow
the datasets' own index files as CoOp's ``datasets/*.py`` read them (cited per list).
"""

# Oxford-IIIT Pets: the image-name stems of annotations/list.txt's 37 breeds, in label order (cats
# capitalised, dogs not); CoOp's oxford_pets.py lowers them into the class name (``abyssinian``)
OXFORD_PETS = (
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal", "Birman",
    "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel",
    "english_setter", "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond",
    "leonberger", "Maine_Coon", "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll",
    "Russian_Blue", "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx",
    "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier",
)


# Food-101: its image folders, sorted as CoOp's DTD.read_and_split_data lists them (``cheese_plate``
# before ``cheesecake``)
FOOD101 = (
    "apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad", "beignets",
    "bibimbap", "bread_pudding", "breakfast_burrito", "bruschetta", "caesar_salad", "cannoli", "caprese_salad",
    "carrot_cake", "ceviche", "cheese_plate", "cheesecake", "chicken_curry", "chicken_quesadilla",
    "chicken_wings", "chocolate_cake", "chocolate_mousse", "churros", "clam_chowder", "club_sandwich",
    "crab_cakes", "creme_brulee", "croque_madame", "cup_cakes", "deviled_eggs", "donuts", "dumplings",
    "edamame", "eggs_benedict", "escargots", "falafel", "filet_mignon", "fish_and_chips", "foie_gras",
    "french_fries", "french_onion_soup", "french_toast", "fried_calamari", "fried_rice", "frozen_yogurt",
    "garlic_bread", "gnocchi", "greek_salad", "grilled_cheese_sandwich", "grilled_salmon", "guacamole", "gyoza",
    "hamburger", "hot_and_sour_soup", "hot_dog", "huevos_rancheros", "hummus", "ice_cream", "lasagna",
    "lobster_bisque", "lobster_roll_sandwich", "macaroni_and_cheese", "macarons", "miso_soup", "mussels",
    "nachos", "omelette", "onion_rings", "oysters", "pad_thai", "paella", "pancakes", "panna_cotta",
    "peking_duck", "pho", "pizza", "pork_chop", "poutine", "prime_rib", "pulled_pork_sandwich", "ramen",
    "ravioli", "red_velvet_cake", "risotto", "samosa", "sashimi", "scallops", "seaweed_salad",
    "shrimp_and_grits", "spaghetti_bolognese", "spaghetti_carbonara", "spring_rolls", "steak",
    "strawberry_shortcake", "sushi", "tacos", "takoyaki", "tiramisu", "tuna_tartare", "waffles",
)


# SUN397: CoOp's class names (sun397.py: ClassName.txt's ``/a/apartment_building/outdoor`` without the
# letter, the parts reversed: ``outdoor apartment_building``), in ClassName.txt's order
SUN397 = (
    "abbey", "airplane_cabin", "airport_terminal", "alley", "amphitheater", "amusement_arcade",
    "amusement_park", "anechoic_chamber", "outdoor apartment_building", "indoor apse", "aquarium", "aqueduct",
    "arch", "archive", "outdoor arrival_gate", "art_gallery", "art_school", "art_studio", "assembly_line",
    "outdoor athletic_field", "public atrium", "attic", "auditorium", "auto_factory", "badlands",
    "indoor badminton_court", "baggage_claim", "shop bakery", "exterior balcony", "interior balcony",
    "ball_pit", "ballroom", "bamboo_forest", "banquet_hall", "bar", "barn", "barndoor", "baseball_field",
    "basement", "basilica", "outdoor basketball_court", "bathroom", "batters_box", "bayou", "indoor bazaar",
    "outdoor bazaar", "beach", "beauty_salon", "bedroom", "berth", "biology_laboratory", "indoor bistro",
    "boardwalk", "boat_deck", "boathouse", "bookstore", "indoor booth", "botanical_garden", "indoor bow_window",
    "outdoor bow_window", "bowling_alley", "boxing_ring", "indoor brewery", "bridge", "building_facade",
    "bullring", "burial_chamber", "bus_interior", "butchers_shop", "butte", "outdoor cabin", "cafeteria",
    "campsite", "campus", "natural canal", "urban canal", "candy_store", "canyon", "backseat car_interior",
    "frontseat car_interior", "carrousel", "indoor casino", "castle", "catacomb", "indoor cathedral",
    "outdoor cathedral", "indoor cavern", "cemetery", "chalet", "cheese_factory", "chemistry_lab",
    "indoor chicken_coop", "outdoor chicken_coop", "childs_room", "indoor church", "outdoor church",
    "classroom", "clean_room", "cliff", "indoor cloister", "closet", "clothing_store", "coast", "cockpit",
    "coffee_shop", "computer_room", "conference_center", "conference_room", "construction_site", "control_room",
    "outdoor control_tower", "corn_field", "corral", "corridor", "cottage_garden", "courthouse", "courtroom",
    "courtyard", "exterior covered_bridge", "creek", "crevasse", "crosswalk", "office cubicle", "dam",
    "delicatessen", "dentists_office", "sand desert", "vegetation desert", "indoor diner", "outdoor diner",
    "home dinette", "vehicle dinette", "dining_car", "dining_room", "discotheque", "dock", "outdoor doorway",
    "dorm_room", "driveway", "outdoor driving_range", "drugstore", "electrical_substation", "door elevator",
    "interior elevator", "elevator_shaft", "engine_room", "indoor escalator", "excavation", "indoor factory",
    "fairway", "fastfood_restaurant", "cultivated field", "wild field", "fire_escape", "fire_station",
    "indoor firing_range", "fishpond", "indoor florist_shop", "food_court", "broadleaf forest",
    "needleleaf forest", "forest_path", "forest_road", "formal_garden", "fountain", "galley", "game_room",
    "indoor garage", "garbage_dump", "gas_station", "exterior gazebo", "indoor general_store",
    "outdoor general_store", "gift_shop", "golf_course", "indoor greenhouse", "outdoor greenhouse",
    "indoor gymnasium", "indoor hangar", "outdoor hangar", "harbor", "hayfield", "heliport", "herb_garden",
    "highway", "hill", "home_office", "hospital", "hospital_room", "hot_spring", "outdoor hot_tub",
    "outdoor hotel", "hotel_room", "house", "outdoor hunting_lodge", "ice_cream_parlor", "ice_floe",
    "ice_shelf", "indoor ice_skating_rink", "outdoor ice_skating_rink", "iceberg", "igloo", "industrial_area",
    "outdoor inn", "islet", "indoor jacuzzi", "indoor jail", "jail_cell", "jewelry_shop", "kasbah",
    "indoor kennel", "outdoor kennel", "kindergarden_classroom", "kitchen", "kitchenette", "outdoor labyrinth",
    "natural lake", "landfill", "landing_deck", "laundromat", "lecture_room", "indoor library",
    "outdoor library", "outdoor lido_deck", "lift_bridge", "lighthouse", "limousine_interior", "living_room",
    "lobby", "lock_chamber", "locker_room", "mansion", "manufactured_home", "indoor market", "outdoor market",
    "marsh", "martial_arts_gym", "mausoleum", "medina", "water moat", "outdoor monastery", "indoor mosque",
    "outdoor mosque", "motel", "mountain", "mountain_snowy", "indoor movie_theater", "indoor museum",
    "music_store", "music_studio", "outdoor nuclear_power_plant", "nursery", "oast_house",
    "outdoor observatory", "ocean", "office", "office_building", "outdoor oil_refinery", "oilrig",
    "operating_room", "orchard", "outdoor outhouse", "pagoda", "palace", "pantry", "park",
    "indoor parking_garage", "outdoor parking_garage", "parking_lot", "parlor", "pasture", "patio", "pavilion",
    "pharmacy", "phone_booth", "physics_laboratory", "picnic_area", "indoor pilothouse", "outdoor planetarium",
    "playground", "playroom", "plaza", "indoor podium", "outdoor podium", "pond", "establishment poolroom",
    "home poolroom", "outdoor power_plant", "promenade_deck", "indoor pub", "pulpit", "putting_green",
    "racecourse", "raceway", "raft", "railroad_track", "rainforest", "reception", "recreation_room",
    "residential_neighborhood", "restaurant", "restaurant_kitchen", "restaurant_patio", "rice_paddy",
    "riding_arena", "river", "rock_arch", "rope_bridge", "ruin", "runway", "sandbar", "sandbox", "sauna",
    "schoolhouse", "sea_cliff", "server_room", "shed", "shoe_shop", "shopfront", "indoor shopping_mall",
    "shower", "skatepark", "ski_lodge", "ski_resort", "ski_slope", "sky", "skyscraper", "slum", "snowfield",
    "squash_court", "stable", "baseball stadium", "football stadium", "indoor stage", "staircase", "street",
    "subway_interior", "platform subway_station", "supermarket", "sushi_bar", "swamp", "indoor swimming_pool",
    "outdoor swimming_pool", "indoor synagogue", "outdoor synagogue", "television_studio", "east_asia temple",
    "south_asia temple", "indoor tennis_court", "outdoor tennis_court", "outdoor tent",
    "indoor_procenium theater", "indoor_seats theater", "thriftshop", "throne_room", "ticket_booth",
    "toll_plaza", "topiary_garden", "tower", "toyshop", "outdoor track", "train_railway",
    "platform train_station", "tree_farm", "tree_house", "trench", "coral_reef underwater", "utility_room",
    "valley", "van_interior", "vegetable_garden", "veranda", "veterinarians_office", "viaduct", "videostore",
    "village", "vineyard", "volcano", "indoor volleyball_court", "outdoor volleyball_court", "waiting_room",
    "indoor warehouse", "water_tower", "block waterfall", "fan waterfall", "plunge waterfall", "watering_hole",
    "wave", "wet_bar", "wheat_field", "wind_farm", "windmill", "barrel_storage wine_cellar",
    "bottle_storage wine_cellar", "indoor wrestling_ring", "yard", "youth_hostel",
)


# UCF-101: CoOp's names (ucf101.py: classInd.txt's ``ApplyEyeMakeup`` cut before each capital and
# joined by ``_``), in classInd.txt's order
UCF101 = (
    "Apply_Eye_Makeup", "Apply_Lipstick", "Archery", "Baby_Crawling", "Balance_Beam", "Band_Marching",
    "Baseball_Pitch", "Basketball", "Basketball_Dunk", "Bench_Press", "Biking", "Billiards", "Blow_Dry_Hair",
    "Blowing_Candles", "Body_Weight_Squats", "Bowling", "Boxing_Punching_Bag", "Boxing_Speed_Bag",
    "Breast_Stroke", "Brushing_Teeth", "Clean_And_Jerk", "Cliff_Diving", "Cricket_Bowling", "Cricket_Shot",
    "Cutting_In_Kitchen", "Diving", "Drumming", "Fencing", "Field_Hockey_Penalty", "Floor_Gymnastics",
    "Frisbee_Catch", "Front_Crawl", "Golf_Swing", "Haircut", "Hammering", "Hammer_Throw", "Handstand_Pushups",
    "Handstand_Walking", "Head_Massage", "High_Jump", "Horse_Race", "Horse_Riding", "Hula_Hoop", "Ice_Dancing",
    "Javelin_Throw", "Juggling_Balls", "Jumping_Jack", "Jump_Rope", "Kayaking", "Knitting", "Long_Jump",
    "Lunges", "Military_Parade", "Mixing", "Mopping_Floor", "Nunchucks", "Parallel_Bars", "Pizza_Tossing",
    "Playing_Cello", "Playing_Daf", "Playing_Dhol", "Playing_Flute", "Playing_Guitar", "Playing_Piano",
    "Playing_Sitar", "Playing_Tabla", "Playing_Violin", "Pole_Vault", "Pommel_Horse", "Pull_Ups", "Punch",
    "Push_Ups", "Rafting", "Rock_Climbing_Indoor", "Rope_Climbing", "Rowing", "Salsa_Spin", "Shaving_Beard",
    "Shotput", "Skate_Boarding", "Skiing", "Skijet", "Sky_Diving", "Soccer_Juggling", "Soccer_Penalty",
    "Still_Rings", "Sumo_Wrestling", "Surfing", "Swing", "Table_Tennis_Shot", "Tai_Chi", "Tennis_Swing",
    "Throw_Discus", "Trampoline_Jumping", "Typing", "Uneven_Bars", "Volleyball_Spiking", "Walking_With_Dog",
    "Wall_Pushups", "Writing_On_Board", "Yo_Yo",
)

"""What the scaled bank's people are called and what they write (bench/bank.py).

Names come with weights (most frequent first, Zipf-like), so that a search by a
common last name hits thousands of customers and a rare one a few hundred, as in a
real French bank. Messages are built from these lines by SQL (bench/bank_sql.py):
a customer opens on a topic, the advisor answers on it, follow-ups and thanks vary
the length.
"""

FIRST_NAMES = [
    "Marie", "Jean", "Nathalie", "Pierre", "Isabelle", "Michel", "Sylvie", "Philippe", "Catherine", "Nicolas",
    "Sandrine", "Christophe", "Christine", "Stéphane", "Valérie", "Frédéric", "Laurent", "Céline", "Julien",
    "Sébastien", "Camille", "Léa", "Manon", "Emma", "Chloé", "Inès", "Sarah", "Lucas", "Hugo", "Thomas", "Louis",
    "Gabriel", "Arthur", "Jules", "Nathan", "Théo", "Maxime", "Antoine", "Alexandre", "Mathilde", "Pauline",
    "Julie", "Aurélie", "Émilie", "Élodie", "Caroline", "Sophie", "Anne", "Martine", "Françoise", "Monique",
    "Jacqueline", "Bernard", "Daniel", "Gérard", "Jacques", "Claude", "René", "Yves", "Hélène", "Florence",
    "Véronique", "Brigitte", "Karine", "Virginie", "Delphine", "Stéphanie", "Audrey", "Marion", "Charlotte",
    "Juliette", "Lucie", "Clara", "Zoé", "Louise", "Alice", "Jade", "Lina", "Mohamed", "Karim", "Mehdi", "Yanis",
    "Rayan", "Adam", "Amine", "Sofiane", "Fatima", "Nadia", "Samia", "Leïla", "Yasmine", "Aïcha", "Kévin",
    "Jérémy", "Romain", "Guillaume", "Benjamin", "Vincent", "François", "Olivier", "Éric", "David", "Thierry",
    "Pascal", "Didier", "Bruno", "Denis", "Serge", "Franck", "Cédric", "Fabien", "Damien", "Anthony", "Jonathan",
    "Mickaël", "Ludovic", "Arnaud", "Grégory", "Yann", "Quentin", "Baptiste", "Clément", "Paul", "Victor",
    "Raphaël", "Léo", "Noah", "Ethan", "Tom", "Enzo", "Mathis", "Margaux", "Océane", "Laura", "Marine", "Anaïs",
    "Agathe", "Noémie", "Justine", "Morgane", "Amandine", "Coralie", "Laetitia", "Gaëlle", "Solène", "Ambre",
    "Romane", "Anna", "Adèle", "Étienne", "Benoît", "Agnès", "Bérénice", "Capucine", "Dominique", "Ghislaine",
    "Hervé", "Joël", "Lionel", "Maëlle", "Mathias", "Nadège", "Odile", "Patricia", "Régis", "Sabrina", "Tristan",
    "Ulysse", "Xavier", "Yvonne", "Thibault", "Apolline", "Armelle", "Blandine", "Corentin", "Eloïse", "Fabrice",
    "Gilles", "Henri", "Irène", "Josiane", "Kelly", "Loïc", "Marcel", "Nina", "Oriane", "Pascale", "Rémi",
    "Simone", "Tiphaine", "Valentin", "Wendy", "Alicia", "Bastien", "Cyril", "Diane", "Elsa", "Florian",
]  # fmt: skip

LAST_NAMES = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
    "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard", "Bonnet",
    "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Lefèvre", "Faure", "André", "Mercier",
    "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin",
    "Robin", "Clément", "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand",
    "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer", "Dufour", "Meunier", "Brun", "Blanchard",
    "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud", "Martinez", "Gérard",
    "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin", "Vidal", "Caron", "Picard", "Roger", "Fabre",
    "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix", "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît",
    "Rey", "Leclerc", "Payet", "Rolland", "Leclercq", "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy",
    "Guillot", "Hubert", "Berger", "Carpentier", "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps", "Huet",
    "Vasseur", "Perez", "Boucher", "Fleury", "Royer", "Klein", "Jacquet", "Adam", "Paris", "Poirier", "Marty",
    "Aubry", "Guyot", "Carré", "Charles", "Renault", "Charpentier", "Ménard", "Maillard", "Baron", "Bertin",
    "Bailly", "Hervé", "Schneider", "Fernandez", "Le Gall", "Collet", "Léger", "Bouvier", "Julien", "Prévost",
    "Millet", "Perrot", "Daniel", "Le Roux", "Cousin", "Germain", "Breton", "Besson", "Langlois", "Rémy",
    "Le Goff", "Pelletier", "Lévêque", "Perrier", "Leblanc", "Barré", "Lebrun", "Marchal", "Weber", "Mallet",
    "Hamon", "Boulanger", "Jacob", "Monnier", "Michaud", "Rodriguez", "Guichard", "Gillet", "Étienne",
    "Grondin", "Poulain", "Tessier", "Chevallier", "Collin", "Chauvin", "Da Silva", "Bouchet", "Gay",
    "Lemaître", "Bénard", "Maréchal", "Humbert", "Reynaud", "Antoine", "Hoarau", "Perret", "Barthélemy",
    "Cordier", "Pichon", "Lejeune", "Gilbert", "Lamy", "Delaunay", "Pasquier", "Carlier", "Laporte", "Nguyen",
    "Benali", "Haddad", "Diallo", "Traoré", "Ferreira", "Rodrigues", "Dos Santos", "Pereira", "Martins", "Kaya",
    "Yilmaz", "Cohen", "Lévy", "Mendy", "Camara", "Diop", "Ndiaye", "Mansour", "Bensaïd", "Tran", "Le", "Pham",
    "Ribeiro", "Gomes", "Costa", "Oliveira", "Bouaziz", "Chaouch", "Kone", "Sylla",
]  # fmt: skip


def zipf_weights(count: int, exponent: float) -> list[float]:
    return [1 / (rank**exponent) for rank in range(1, count + 1)]


FIRST_NAME_WEIGHTS = zipf_weights(len(FIRST_NAMES), 0.55)
LAST_NAME_WEIGHTS = zipf_weights(len(LAST_NAMES), 0.5)

# Branch towns and districts; "Agence <town> <district>".
TOWNS = [
    ("Paris", ["Opéra", "Bastille", "Montparnasse", "Batignolles", "Nation", "Auteuil", "Marais", "Ternes"]),
    ("Lyon", ["Part-Dieu", "Croix-Rousse", "Confluence", "Monplaisir", "Vaise"]),
    ("Marseille", ["Vieux-Port", "Castellane", "Prado", "La Joliette"]),
    ("Toulouse", ["Capitole", "Carmes", "Saint-Cyprien"]),
    ("Nice", ["Masséna", "Libération", "Port"]),
    ("Nantes", ["Graslin", "Commerce", "Chantenay"]),
    ("Strasbourg", ["Kléber", "Neudorf", "Krutenau"]),
    ("Montpellier", ["Comédie", "Antigone", "Port Marianne"]),
    ("Bordeaux", ["Chartrons", "Saint-Pierre", "Bastide"]),
    ("Lille", ["Grand Place", "Vieux-Lille", "Wazemmes"]),
    ("Rennes", ["République", "Thabor", "Sainte-Anne"]),
    ("Reims", ["Cathédrale", "Erlon"]),
    ("Le Havre", ["Hôtel de Ville", "Sainte-Marie"]),
    ("Saint-Étienne", ["Jean Jaurès", "Fauriel"]),
    ("Toulon", ["Mourillon", "Liberté"]),
    ("Grenoble", ["Victor Hugo", "Île Verte"]),
    ("Dijon", ["Darcy", "Wilson"]),
    ("Angers", ["Ralliement", "Doutre"]),
    ("Nîmes", ["Arènes", "Jean Jaurès"]),
    ("Villeurbanne", ["Gratte-Ciel", "Charpennes"]),
    ("Clermont-Ferrand", ["Jaude", "Delille"]),
    ("Le Mans", ["République", "Jacobins"]),
    ("Aix-en-Provence", ["Mirabeau", "Rotonde"]),
    ("Brest", ["Siam", "Saint-Martin"]),
    ("Tours", ["Plumereau", "Nationale"]),
    ("Amiens", ["Gambetta", "Saint-Leu"]),
    ("Limoges", ["Jourdan", "Carnot"]),
    ("Annecy", ["Vieille Ville", "Bonlieu"]),
    ("Perpignan", ["Castillet", "Arago"]),
    ("Metz", ["République", "Sablon"]),
    ("Besançon", ["Granvelle", "Battant"]),
    ("Orléans", ["Martroi", "Bourgogne"]),
    ("Rouen", ["Vieux-Marché", "Saint-Sever"]),
    ("Mulhouse", ["Réunion", "Rebberg"]),
    ("Caen", ["Saint-Pierre", "Vaucelles"]),
    ("Nancy", ["Stanislas", "Saint-Epvre"]),
    ("Avignon", ["Horloge", "Carnot"]),
    ("Poitiers", ["Notre-Dame", "Blossac"]),
    ("La Rochelle", ["Vieux-Port", "Minimes"]),
    ("Pau", ["Clemenceau", "Trespoey"]),
    ("Bayonne", ["Petit Bayonne", "Saint-Esprit"]),
    ("Chambéry", ["Éléphant", "Bissy"]),
    ("Valence", ["Championnet", "Victor Hugo"]),
    ("Troyes", ["Bouchon", "Vauluisant"]),
    ("Lorient", ["Merville", "Nouvelle Ville"]),
    ("Quimper", ["Locmaria", "Kerfeunteun"]),
    ("Colmar", ["Petite Venise", "Saint-Joseph"]),
    ("Vannes", ["Port", "Saint-Patern"]),
    ("Ajaccio", ["Cours Napoléon", "Diamant"]),
    ("Bastia", ["Vieux-Port", "Saint-Joseph"]),
]

# Each topic: what a customer opens with, what the advisor answers (lower case first:
# a greeting goes before them).
TOPICS = [
    (
        [
            "ma carte est refusée partout depuis ce matin, pouvez-vous regarder ?",
            "je crois que ma carte est bloquée, j'ai composé trois fois un mauvais code au distributeur.",
            "le terminal du supermarché a refusé ma carte deux fois de suite, est-ce qu'il y a un problème ?",
        ],
        [
            "je regarde tout de suite. Après trois codes erronés la carte se bloque ; un retrait avec le bon code "
            "la débloque.",
            "votre carte n'est pas en opposition. J'ai levé le blocage, elle fonctionnera à nouveau d'ici une heure.",
            "le refus vient du plafond de paiement atteint sur 30 jours. Je peux le relever temporairement si vous "
            "le souhaitez.",
        ],
    ),
    (
        [
            "j'ai perdu mon portefeuille avec ma carte bancaire, que dois-je faire ?",
            "on m'a volé mon sac hier soir, ma carte était dedans. Pouvez-vous la bloquer ?",
            "je vois deux paiements que je n'ai pas faits sur mon compte, sur un site que je ne connais pas.",
        ],
        [
            "faites opposition tout de suite dans l'application (Cartes > Faire opposition). Je commande ensuite "
            "une nouvelle carte.",
            "l'opposition est enregistrée. Votre nouvelle carte arrive sous 5 jours ouvrés et son code par courrier "
            "séparé.",
            "j'ai mis la carte en opposition et ouvert une contestation pour les deux paiements ; vous serez "
            "remboursé sous 48 h.",
        ],
    ),
    (
        [
            "je dois régler un acompte de 8 500 € mais mon plafond de virement est à 5 000 €.",
            "est-il possible d'augmenter mon plafond de paiement pour les vacances ?",
            "mon plafond de retrait est trop bas pour ce week-end, je dois payer un artisan en espèces.",
        ],
        [
            "je peux relever temporairement votre plafond. Pour quelle date avez-vous besoin du virement ?",
            "c'est fait : votre plafond de paiement passe à 4 000 € pendant 30 jours.",
            "j'ai relevé votre plafond de retrait à 1 500 € jusqu'à lundi inclus.",
        ],
    ),
    (
        [
            "mon employeur dit avoir fait le virement de mon salaire mais je ne le vois pas.",
            "je voudrais faire un virement vers un compte en Espagne, quels sont les frais ?",
            "est-ce que je peux faire un virement instantané depuis l'application ?",
        ],
        [
            "je vois le virement en cours de réception, il sera crédité ce soir au plus tard.",
            "un virement SEPA vers l'Espagne est gratuit et arrive en un jour ouvré.",
            "oui, dans Virements > Nouveau virement, cochez « instantané » ; il arrive en quelques secondes.",
        ],
    ),
    (
        [
            "nous avons signé le compromis pour un appartement, pouvons-nous faire le point sur le prêt immobilier ?",
            "je voudrais renégocier le taux de mon prêt immobilier, est-ce envisageable ?",
            "la banque nous demande une simulation de prêt pour une maison à 320 000 €.",
        ],
        [
            "félicitations ! Je vous propose un rendez-vous jeudi à 10 h ; apportez le compromis et vos trois "
            "derniers bulletins de salaire.",
            "c'est possible ; je prépare une simulation et je vous rappelle d'ici la fin de semaine.",
            "je vous envoie la simulation par e-mail ; elle suppose un apport de 10 % et une durée de 25 ans.",
        ],
    ),
    (
        [
            "mon nouvel employeur me demande un RIB, où est-ce que je le trouve ?",
            "pourriez-vous m'envoyer un RIB de mon compte joint ?",
            "il me faut une attestation de compte pour mon propriétaire.",
        ],
        [
            "dans l'application : Comptes > votre compte courant > RIB, puis « Partager ».",
            "je vous l'envoie par e-mail dans la foulée.",
            "l'attestation est disponible dans vos documents en ligne ; je l'ai aussi envoyée par courrier.",
        ],
    ),
    (
        [
            "je vais être à découvert quelques jours en attendant ma paie, est-ce un problème ?",
            "je ne comprends pas les frais prélevés ce mois-ci sur mon compte.",
            "pouvez-vous m'expliquer cette commission d'intervention de 8 € ?",
        ],
        [
            "votre autorisation de découvert est de 500 € ; jusque-là il n'y a que des agios, pas de frais de rejet.",
            "il s'agit de la cotisation annuelle de votre carte ; je vous en rembourse la moitié à titre commercial.",
            "c'est la commission liée au dépassement du 12. Je l'annule exceptionnellement.",
        ],
    ),
    (
        [
            "je voudrais ouvrir un livret A pour ma fille, comment faire ?",
            "mon contrat d'assurance-vie a 8 ans en janvier, dois-je faire quelque chose ?",
            "j'ai un peu d'épargne qui dort sur mon compte courant, que me conseillez-vous ?",
        ],
        [
            "il suffit de sa pièce d'identité et du livret de famille ; je peux l'ouvrir dès aujourd'hui.",
            "rien d'obligatoire, mais c'est le bon moment pour revoir la répartition et la clause bénéficiaire.",
            "parlons-en en rendez-vous : selon votre horizon, un livret ou une assurance-vie conviendront mieux.",
        ],
    ),
    (
        [
            "je souhaiterais un rendez-vous la semaine prochaine, plutôt en fin de journée.",
            "est-il possible de déplacer notre rendez-vous de jeudi ?",
            "pourrions-nous faire notre point annuel par téléphone plutôt qu'en agence ?",
        ],
        [
            "je vous propose mardi à 17 h 30 ou jeudi à 18 h, à l'agence ou en visio.",
            "bien sûr, je le décale à vendredi même heure. Cela vous convient-il ?",
            "tout à fait, je vous appelle jeudi à 12 h 15 sur votre portable.",
        ],
    ),
    (
        [
            "je n'ai plus de chèques, pouvez-vous m'en commander un carnet ?",
            "j'ai déposé un chèque lundi, quand sera-t-il crédité ?",
            "un chèque que j'ai émis a été rejeté, je ne comprends pas pourquoi.",
        ],
        [
            "c'est commandé ; vous le recevrez à l'agence sous 10 jours, je vous préviendrai.",
            "les chèques sont crédités sous 2 jours ouvrés après leur dépôt ; le vôtre le sera demain.",
            "le chèque a été rejeté pour signature non conforme ; le bénéficiaire peut le représenter.",
        ],
    ),
    (
        [
            "je voudrais contester un prélèvement de mon ancien fournisseur d'électricité.",
            "un prélèvement a été fait deux fois ce mois-ci, pouvez-vous vérifier ?",
            "comment puis-je bloquer les prélèvements d'un organisme ?",
        ],
        [
            "vous pouvez le contester dans les 8 semaines ; je lance la demande de remboursement.",
            "vous avez raison, le second prélèvement est un doublon. J'ai demandé son annulation.",
            "dans l'application, Prélèvements > Mandats, choisissez « Révoquer le mandat ».",
        ],
    ),
    (
        [
            "je déménage le mois prochain, comment changer mon adresse ?",
            "je me marie en juin, faut-il modifier quelque chose sur mes comptes ?",
            "mon numéro de téléphone va changer, comment mettre à jour mon dossier ?",
        ],
        [
            "vous pouvez le faire dans Profil > Coordonnées ; un justificatif de domicile vous sera demandé.",
            "félicitations ! Nous pourrons ouvrir un compte joint ; apportez le livret de famille.",
            "modifiez-le dans Profil > Sécurité ; un code de confirmation sera envoyé au nouveau numéro.",
        ],
    ),
    (
        [
            "je n'arrive plus à me connecter à l'application depuis la mise à jour.",
            "j'ai changé de téléphone, comment réactiver la validation des paiements ?",
            "l'application me demande un code que je n'ai jamais reçu.",
        ],
        [
            "désinstallez puis réinstallez l'application ; vos identifiants restent les mêmes.",
            "je vous envoie un code d'activation par courrier ; en attendant, les paiements sont validés par SMS.",
            "j'ai renvoyé le code au numéro qui se termine par 78. Dites-moi s'il n'arrive pas.",
        ],
    ),
    (
        [
            "je voudrais financer une voiture d'occasion, quels sont vos taux ?",
            "est-il possible de rembourser par anticipation mon crédit consommation ?",
            "nous avons besoin de 6 000 € pour des travaux, que proposez-vous ?",
        ],
        [
            "pour 15 000 € sur 48 mois, le taux est de 5,2 % ; je vous envoie une offre détaillée.",
            "oui, sans frais au-delà de 10 000 € remboursés ; je vous prépare le décompte.",
            "un prêt travaux serait le plus adapté ; je vous envoie une simulation ce soir.",
        ],
    ),
    (
        [
            "je voudrais ouvrir un compte pour mon fils qui a 16 ans.",
            "comment ajouter mon conjoint sur mon compte ?",
            "ma fille part étudier à l'étranger, quelle carte lui conseillez-vous ?",
        ],
        [
            "il suffit de venir ensemble avec sa pièce d'identité ; la carte sera à autorisation systématique.",
            "il faut transformer le compte en compte joint ; je vous envoie le formulaire à signer.",
            "une carte sans frais à l'étranger lui conviendra ; je peux l'ajouter à votre offre.",
        ],
    ),
    (
        [
            "mon père est décédé, quelles démarches dois-je faire auprès de la banque ?",
            "je voudrais donner procuration à ma sœur sur mon compte.",
            "le notaire vous a-t-il transmis les documents pour la succession ?",
        ],
        [
            "toutes mes condoléances. Le notaire nous contactera ; les comptes sont bloqués jusque-là.",
            "elle doit venir avec sa pièce d'identité, et vous signerez le formulaire ensemble.",
            "oui, nous les avons reçus jeudi ; le dossier est en cours de traitement.",
        ],
    ),
]

CUSTOMER_OPENERS = ["Bonjour, ", "Bonjour Madame, ", "Bonjour Monsieur, ", "Bonsoir, ", "Bonjour ! ", "", "Hello, "]
CUSTOMER_CONTEXT = [
    "C'est assez urgent.",
    "Je suis en déplacement toute la semaine.",
    "Je ne peux pas passer à l'agence avant samedi.",
    "Merci de me répondre dès que possible.",
    "J'ai essayé d'appeler mais la ligne était occupée.",
    "Je vous joins le document si besoin.",
    "Mon conjoint est d'accord.",
    "Je préfère être contacté par message.",
    "Pour information j'ai déjà fait la démarche en ligne, sans succès.",
    "Je reste joignable sur ce numéro.",
]
CUSTOMER_FOLLOW_UPS = [
    "D'accord, je regarde ça ce soir.",
    "Jeudi 10 h, c'est parfait.",
    "Est-ce que cela aura un coût ?",
    "Il me faut quels documents exactement ?",
    "Je peux le faire depuis l'application ?",
    "Et si cela ne fonctionne toujours pas demain ?",
    "Combien de temps cela prend-il en général ?",
    "Vous pouvez me rappeler en fin de journée ?",
    "C'est fait, merci.",
    "Je n'ai toujours rien reçu.",
    "Mon fils souhaiterait venir aussi, est-ce possible ?",
    "Très bien, je passerai à l'agence samedi matin avec les justificatifs demandés.",
    "Je comprends. Pouvez-vous me confirmer par écrit ?",
    "Parfait. Et pour la carte de mon épouse, c'est la même chose ?",
]
CUSTOMER_THANKS = [
    "Merci beaucoup !",
    "Parfait, merci.",
    "Super 👍",
    "Merci pour votre réactivité.",
    "Merci, bonne journée.",
    "Très bien, merci à vous.",
    "Ok merci",
    "Merci infiniment pour votre aide 🙏",
]
ADVISOR_FOLLOW_UPS = [
    "Je m'en occupe et je reviens vers vous dans la journée.",
    "Pouvez-vous me confirmer la date qui vous arrange ?",
    "C'est noté. Avez-vous d'autres questions ?",
    "Je vous envoie le document par e-mail dans la foulée.",
    "Il vous suffit de signer électroniquement le document que je viens de déposer dans votre espace.",
    "Aucun frais dans votre cas.",
    "Vos trois derniers bulletins de salaire et un justificatif de domicile suffiront.",
    "Oui, tout se fait depuis l'application, rubrique Services.",
    "Je vérifie avec le service concerné et je vous tiens informé.",
    "C'est bien reçu, merci. Le dossier part en validation aujourd'hui.",
    "Je vous rappelle à 18 h comme convenu.",
    "Si le problème persiste demain, écrivez-moi et je lancerai une réclamation.",
]
ADVISOR_CLOSINGS = [
    "Avec plaisir, bonne journée !",
    "Je vous en prie. Belle fin de semaine.",
    "Avec plaisir. N'hésitez pas si besoin.",
    "Je clôture votre demande ; écrivez-moi ici pour toute autre question.",
    "Ravi d'avoir pu vous aider, bonne soirée.",
    "C'est réglé. Bonne journée à vous.",
]
NOTES = [
    "Client rappelé, rendez-vous fixé jeudi.",
    "Justificatif de domicile reçu, dossier complet.",
    "Attention : client sensible aux frais, geste commercial déjà accordé en mars.",
    "Demande transmise au service crédit.",
    "Vérifier la réception de la nouvelle carte la semaine prochaine.",
    "Le client préfère être contacté après 18 h.",
    "Offre de prêt envoyée, en attente de signature.",
    "Réclamation ouverte auprès du service monétique.",
]
PROSPECT_NICKNAMES = ["Nico", "Steph", "Juju", "Manu", "Fred", "Caro", "Seb", "Vanessa 🌸", "JB", "Maman", "Alex"]
OUT_OF_OFFICE_MESSAGES = [
    "Je suis en congés ; votre conseiller remplaçant vous répond.",
    "Absent pour formation, de retour très vite.",
    "En congé parental ; un collègue de l'agence prend le relais.",
]

"""Curated bilingual (zh/en) moderation lexicon: category → [(regular expression, weight)].

English entries are matched case-insensitively between ASCII letter boundaries; Chinese entries
as substrings. Entries are phrases with an object or an intent, not single words, because
single words are where a lexicon moderator's false positives come from ("kill the process",
"shoot a photo", "杀毒软件", "秒杀"): a bare topic word ("suicide", "杀人", "money laundering")
gets a weight under the default threshold 0.5, so news and help-seeking text is not flagged
by it alone. Weights combine per category as score = 1 − ∏(1 − w) (see moderation.py).

Subcategories ("self-harm/intent") also count towards their parent ("self-harm").
"""

from __future__ import annotations

# ---------------------------------------------------------------------------- English pieces

_PEOPLE = (
    r"(?:you|u|him|her|them|everyone|everybody|people|all of you|y'all|"
    r"my (?:wife|husband|boss|teacher|neighbou?r|family|parents|mom|dad|mother|father|brother|"
    r"sister|ex|girlfriend|boyfriend|classmates?|coworkers?|colleagues?))"
)
_I_WILL = (
    r"(?:i|we)\s*(?:'ll|will|shall|'m going to|am going to|'re going to|are going to|'m gonna|"
    r"am gonna|'re gonna|gonna|want to|wanna|plan to|intend to|'m about to|am about to|'d like to)"
)
_HARM = (
    r"(?:kill|murder|stab|shoot|strangle|choke|hurt|beat up|torture|slaughter|behead|rape|poison)"
)
_GROUP = (
    r"(?:jews?|jewish people|muslims?|christians?|blacks?|black people|whites?|white people|"
    r"asians?|chinese|mexicans?|immigrants?|refugees?|arabs?|gays?|gay people|lesbians?|"
    r"trans(?:gender)? people|women|indians?|africans?|latinos?|hispanics?|japanese|koreans?)"
)
_HOW = r"(?:how (?:to|do i|do you|can i|could i|should i)|best way to|easiest way to|steps to|teach me (?:how )?to|help me|instructions (?:to|for)|guide to|recipe for)"
_MINOR = (
    r"(?:child(?:ren)?|kids?|minors?|under-?aged?|pre-?teens?|teen (?:girls?|boys?)|"
    r"little (?:girls?|boys?)|(?:[1-9]|1[0-7])[- ](?:year|yr)s?[- ]old|schoolgirls?|loli(?:ta)?|toddlers?)"
)
_MINOR_SEX = (
    r"(?:porn\w*|nudes?|naked (?:photos?|pictures?|pics?|images?|videos?)|erotic\w*|sexy|"
    r"have sex|having sex|sexual (?:photos?|pictures?|images?|videos?|content|acts?|roleplay|stor(?:y|ies)))"
)

# ---------------------------------------------------------------------------- Chinese pieces

_ZH_PEOPLE = r"(?:你|你们|你全家|他|她|他们|她们|别人|所有人)"
_ZH_KILL = r"(?:杀了|杀死|弄死|打死|砍死|捅死|干掉|宰了|掐死|毒死|烧死|炸死)"
_ZH_GROUP = (
    r"(?:穆斯林|犹太人|黑人|白人|同性恋|外地人|河南人|东北人|新疆人|女人|男人|日本人|韩国人|"
    r"印度人|移民|残疾人|农村人)"
)
_ZH_HOW = r"(?:怎么|如何|怎样|教我|求|求教|告诉我怎么|用什么方法)"
_ZH_MINOR = r"(?:儿童|幼童|幼女|男童|女童|未成年人?|萝莉|小学生|初中生|小女孩|小男孩|\d{1,2}岁的?(?:女孩|男孩|孩子))"
_ZH_SEX = r"(?:色情|裸照|裸体照|做爱|性交|淫秽|黄片)"

EN: dict[str, list[tuple[str, float]]] = {
    "harassment": [
        (r"fuck (?:you|off|u)", 0.7),
        (
            r"you (?:stupid|dumb|fucking|worthless|pathetic|ugly|fat) (?:idiot|moron|bitch|cunt|"
            r"bastard|loser|pig|piece of (?:shit|garbage|trash))",
            0.9,
        ),
        (
            r"(?:you(?:'re| are)|ur) (?:an? |such an? |a fucking )?(?:idiot|moron|retard|loser|"
            r"worthless|pathetic|piece of shit|waste of space|bitch|cunt)",
            0.8,
        ),
        (r"nobody (?:likes|loves|cares about|wants) you", 0.6),
        (r"shut (?:the fuck )?up", 0.35),
        (r"go to hell", 0.45),
        (r"son of a bitch|motherfuck\w*", 0.6),
        (r"cunts?", 0.6),
        (r"bitch(?:es)?|assholes?|retards?", 0.4),
    ],
    "harassment/threatening": [
        (_I_WILL + r"\s+" + _HARM + r"\s+" + _PEOPLE, 0.95),
        (r"go kill yourself|kys|you should (?:die|kill yourself|be dead)", 0.9),
        (r"(?<!don't )(?<!do not )(?<!not )kill yourself", 0.7),
        (r"i know where you live", 0.8),
        (r"you(?:'re| are) (?:dead|going to die|gonna die)", 0.6),
        (r"watch your back", 0.5),
    ],
    "hate": [
        (
            r"n[i1]gg(?:er|a|ers|as|az)|faggots?|kikes?|wetbacks?|towel ?heads?|ragheads?|gooks?",
            0.9,
        ),
        (r"spics?|trann(?:y|ies)", 0.7),
        (
            _GROUP + r" (?:are|is) (?:all |just )?(?:animals|vermin|subhuman|parasites|"
            r"cockroaches|inferior|filth|a disease|scum|rats|savages)",
            0.9,
        ),
        (r"(?:i|we) hate (?:all )?(?:the )?" + _GROUP, 0.7),
        (r"heil hitler|sieg heil|white power", 0.8),
    ],
    "hate/threatening": [
        (
            r"(?:kill|exterminate|gas|eradicate|wipe out|get rid of|deport) (?:all )?(?:the |those |these )?"
            + _GROUP,
            0.95,
        ),
        (r"death to (?:all )?(?:the )?" + _GROUP, 0.95),
    ],
    "self-harm": [
        (r"suicid(?:e|al)|self-harm(?:ing)?", 0.3),
        (r"(?:kill|hurt|cut) myself", 0.45),
        (r"slit (?:my|her|his) wrists?", 0.8),
    ],
    "self-harm/intent": [
        (
            r"i\s*(?:'m| am)?\s*(?:want|wanna|going|gonna|plan|planning|intend|need|about|ready) "
            r"(?:to )?(?:kill myself|end my life|end it all|commit suicide|hurt myself|cut myself|die)",
            0.9,
        ),
        (r"(?:i(?:'m| am)|i feel) (?:so |really )?suicidal", 0.9),
        (r"i (?:don't|do not) want to (?:live|be alive)(?: anymore)?", 0.8),
        (r"i(?:'ve| have) been (?:cutting|hurting) myself", 0.9),
    ],
    "self-harm/instructions": [
        (
            r"(?:how (?:to|do i|can i|should i)|best way to|easiest way to|painless way to|"
            r"quickest way to|ways? to) (?:kill myself|commit suicide|end my life|hang myself|"
            r"overdose|slit my wrists?|cut myself)",
            0.95,
        ),
        (
            r"how many (?:pills|sleeping pills|tylenol|paracetamol|acetaminophen)[^.?!]{0,30}"
            r"(?:to die|to kill (?:myself|me)|lethal|to overdose)",
            0.9,
        ),
    ],
    "sexual": [
        (r"send (?:me )?(?:your )?nudes|blow ?jobs?|hand ?jobs?|rim ?jobs?", 0.9),
        (r"explicit sex(?:ual)? (?:scene|story|content)", 0.8),
        (r"porn(?:o|ography|hub)?|xxx (?:videos?|movies?)|sex tapes?", 0.6),
        (r"nude (?:photos?|pics?|pictures?|selfies?)|masturbat\w*|orgasms?", 0.6),
        (r"(?:have|having|had) sex with|fuck (?:me|her|him) (?:hard|now)", 0.55),
        (r"horny|erotic\w*", 0.45),
    ],
    "sexual/minors": [
        (_MINOR + r"\W+(?:\w+\W+){0,4}?" + _MINOR_SEX, 0.95),
        (
            _MINOR_SEX
            + r"\W+(?:\w+\W+){0,4}?(?:of|with|about|featuring|involving) (?:a |an )?"
            + _MINOR,
            0.95,
        ),
        (r"child (?:porn\w*|sexual abuse material)|csam|pedophil\w*", 0.6),
    ],
    "violence": [
        (_I_WILL + r"\s+" + _HARM + r"\s+" + _PEOPLE, 0.9),
        (_HARM + r"\s+" + _PEOPLE, 0.45),
        (
            r"(?:kill|murder|slaughter|massacre|shoot) (?:them |'?em )?(?:all|everyone|everybody)",
            0.8,
        ),
        (
            r"shoot up (?:a|the|my|our|this) (?:school|church|mosque|synagogue|mall|office|concert|class)",
            0.95,
        ),
        (
            _HOW + r" (?:kill|murder|poison|strangle|stab) (?:a (?:person|man|woman|child)|someone|"
            r"somebody|my \w+|him|her|them|people)",
            0.95,
        ),
        (r"(?:beat|stab|shoot|burn|torture|choke) (?:him|her|them|you|someone) to death", 0.9),
        (
            r"(?:blow up|bomb) (?:the|a|this|that|our) (?:building|school|church|mosque|synagogue|"
            r"airport|station|office|plane|train|bus|embassy|hospital|mall|stadium)",
            0.9,
        ),
        (r"(?:mass|school) shootings?|murder(?:ed|s)?|massacres?|genocide", 0.3),
    ],
    "violence/graphic": [
        (
            r"(?:guts|brains|intestines|entrails) (?:spilling|spilled|splattered|hanging) "
            r"(?:out|everywhere|all over)",
            0.9,
        ),
        (r"skinned alive|dismember\w*|decapitat\w*|disembowel\w*|eviscerat\w*", 0.7),
        (r"blood (?:everywhere|spurting|gushing)|burned alive", 0.6),
    ],
    "illicit": [
        (
            _HOW + r" (?:make|cook|synthesi[sz]e|produce|manufacture|grow|buy|get|order|smuggle) "
            r"(?:some )?(?:meth(?:amphetamine)?|crystal meth|cocaine|crack|heroin|fentanyl|lsd|"
            r"mdma|ecstasy|ghb|ketamine)",
            0.95,
        ),
        (_HOW + r" launder (?:money|cash|the proceeds|crypto)", 0.9),
        (
            _HOW + r" (?:hack into|break into|get into|access) (?:someone(?:'s)?|somebody(?:'s)?|"
            r"my (?:ex|wife|husband|girlfriend|boyfriend|boss)(?:'s)?|an?|the|his|her|their)"
            r"[^.?!]{0,30}(?:account|email|phone|computer|wifi|facebook|instagram|icloud|bank)",
            0.9,
        ),
        (
            r"(?:buy|sell|make|print) (?:fake|counterfeit|forged) (?:money|bills|cash|ids?|"
            r"passports?|documents|diplomas?|degrees?)",
            0.85,
        ),
        (
            r"(?:buy|sell|selling|buying) stolen (?:credit cards?|card numbers|accounts|identities|data)",
            0.85,
        ),
        (
            r"(?:write|create|build|make|code) (?:a |some |me a )?(?:ransomware|keylogger|malware|"
            r"computer virus|botnet|phishing (?:page|site|email|kit))",
            0.85,
        ),
        (
            r"steal (?:someone's |a person's )?(?:identity|identities|credit card(?: number)?s?|passwords)",
            0.7,
        ),
        (r"how to (?:shoplift|pickpocket|hotwire a car)", 0.7),
        (r"money laundering|drug trafficking", 0.3),
    ],
    "illicit/violent": [
        (
            _HOW + r"\s+(?:make|build|assemble|create|construct)\s+(?:a |an )?(?:bomb|pipe bomb|"
            r"explosives?(?: device)?|ied|molotov(?: cocktail)?|nail bomb|dirty bomb|napalm|nerve "
            r"agent|sarin|ricin|chemical weapons?|bioweapons?|untraceable gun|ghost gun|silencer)",
            0.95,
        ),
        (r"(?:make|build) (?:a |an )?(?:pipe |nail )?bomb", 0.8),
        (r"buy (?:a )?gun (?:without|with no) (?:a )?(?:background check|license|permit)", 0.8),
        (r"3d[- ]print(?:ed|ing)? (?:a )?(?:gun|firearm)", 0.6),
        (r"(?:pipe|nail|dirty|car|fertili[sz]er) bombs?", 0.45),
    ],
    "prompt_injection": [
        (
            r"(?:ignore|disregard|forget|override|bypass|skip)\s+(?:(?:all|any|the|your|my|of)\s+)*"
            r"(?:previous|prior|above|earlier|preceding|former|original|initial|system|developer)\s+"
            r"(?:instructions?|prompts?|rules|directions|guidelines|messages?|context|constraints)",
            0.9,
        ),
        (
            r"(?:ignore|disregard|forget) (?:everything|all) (?:above|before|you were told|previously)",
            0.85,
        ),
        (
            r"(?:reveal|print|show|display|repeat|output|leak|tell me) (?:me )?(?:your|the) "
            r"(?:system prompt|initial (?:prompt|instructions)|hidden (?:prompt|instructions)|"
            r"original instructions|instructions above)",
            0.85,
        ),
        (r"you are (?:now )?(?:dan|in developer mode|jailbroken|no longer bound)", 0.85),
        (r"act as (?:an? )?(?:unfiltered|uncensored|unrestricted)", 0.8),
        (r"developer mode (?:enabled|on)|do anything now", 0.7),
        (r"<\|im_start\|>system|\[system\]|</?system>", 0.7),
        (r"new instructions:|jailbreak", 0.45),
    ],
}

ZH: dict[str, list[tuple[str, float]]] = {
    "harassment": [
        (r"傻逼|傻屄|煞笔|操你妈|草泥马|你妈死了", 0.8),
        (r"你(?:是个?|这个|真是个?)?(?:废物|蠢货|白痴|智障|贱人|垃圾|猪头|人渣|傻子)", 0.8),
        (r"去死吧|你去死|给我去死|怎么不去死", 0.8),
        (r"婊子|狗东西", 0.6),
        (r"脑残|贱人|人渣", 0.5),
        (r"滚蛋|给我滚|他妈的", 0.3),
    ],
    "harassment/threatening": [
        (
            r"(?:我|我们|老子)(?:一定|迟早)?(?:要|会|想|得)?" + _ZH_KILL + r"(?:你|你们|你全家)",
            0.95,
        ),
        (r"弄死你|打死你|砍死你|宰了你|捅死你", 0.9),
        (r"我知道你住(?:在)?哪", 0.8),
        (r"你死定了", 0.7),
        (r"你等着瞧|你给我等着", 0.5),
    ],
    "hate": [
        (r"支那|黑鬼|死基佬", 0.9),
        (
            _ZH_GROUP
            + r"(?:都|全都)?(?:该死|去死|不是人|是畜生|是垃圾|是蟑螂|是寄生虫|是劣等|不配活着)",
            0.9,
        ),
        (r"劣等民族|劣等人种", 0.8),
        (r"小日本|阿三", 0.4),
    ],
    "hate/threatening": [
        (r"(?:杀光|灭绝|消灭|赶尽杀绝)(?:所有|全部)?的?" + _ZH_GROUP, 0.95),
    ],
    "self-harm": [
        (r"自杀|轻生|自残", 0.3),
        (r"割腕", 0.5),
    ],
    "self-harm/intent": [
        (
            r"我(?:真的)?(?:想|要|准备|打算|决定)(?:去)?(?:自杀|结束(?:自己的)?生命|轻生|割腕|跳楼|跳河|上吊)",
            0.95,
        ),
        (r"我(?:真的|好)?想死", 0.7),
        (r"不想活了|活着没意思|活不下去了", 0.6),
    ],
    "self-harm/instructions": [
        (_ZH_HOW + r"(?:才能)?(?:自杀|割腕|上吊|无痛(?:地)?死)", 0.95),
        (r"(?:吃多少|多少片)[^。？?]{0,10}(?:安眠药|药)[^。？?]{0,6}(?:能|会|可以|才能)?死", 0.9),
    ],
    "sexual": [
        (r"口交|肛交|约炮", 0.8),
        (r"黄片|黄色网站|色情片|裸照", 0.7),
        (r"做爱|性交", 0.6),
        (r"色情|自慰|淫秽", 0.45),
    ],
    "sexual/minors": [
        (_ZH_MINOR + r"[^。！？!?]{0,8}?" + _ZH_SEX, 0.95),
        (_ZH_SEX + r"[^。！？!?]{0,8}?" + _ZH_MINOR, 0.95),
        (r"恋童", 0.5),
    ],
    "violence": [
        (r"(?:我|我们|老子|要|想|去|会|得|必须|准备)" + _ZH_KILL + _ZH_PEOPLE, 0.9),
        (
            _ZH_HOW + r"(?:才能)?(?:杀人|杀死(?:一个人|他|她|别人)|下毒|毒死(?:他|她|人|别人))",
            0.95,
        ),
        (
            r"(?:我|我们)?(?:要|想|准备|打算)(?:去)?(?:炸掉|炸毁|血洗|袭击|炸)(?:这个|那个|整个)?"
            r"(?:学校|医院|商场|车站|机场|政府|大楼|教堂|清真寺|地铁)",
            0.9,
        ),
        (r"杀人|屠杀|血洗", 0.35),
    ],
    "violence/graphic": [
        (r"肢解|碎尸|开膛破肚|血肉模糊|脑浆迸裂|五马分尸", 0.6),
    ],
    "illicit": [
        (
            _ZH_HOW + r"(?:自己)?(?:制作|制造|合成|提炼|做|买到?|购买)(?:冰毒|海洛因|可卡因|摇头丸|"
            r"大麻|k粉|芬太尼|毒品)",
            0.95,
        ),
        (r"(?:怎么|如何|怎样|帮我|教我)洗钱", 0.9),
        (r"(?:买卖|出售|收购)(?:个人信息|身份证|银行卡|公民信息)", 0.85),
        (
            r"(?:盗号|黑进|入侵)(?:别人|他人|他|她|前任|老板)?的?(?:账号|电脑|手机|微信|邮箱|网站)",
            0.8,
        ),
        (r"(?:写|制作|开发)(?:一个)?(?:勒索病毒|木马|病毒程序|钓鱼网站)", 0.8),
        (r"代开发票|办假证|假证件|假钞|信用卡套现", 0.6),
        (r"制毒|贩毒|洗钱|盗号", 0.3),
    ],
    "illicit/violent": [
        (
            _ZH_HOW
            + r"(?:自己)?(?:制作|制造|做|组装|自制)(?:一个)?(?:炸弹|炸药|燃烧瓶|土枪|枪支|毒气|雷管|爆炸物)",
            0.95,
        ),
        (r"(?:自制|土制)(?:炸弹|炸药|枪支|燃烧瓶)|买卖枪支|购买枪支", 0.7),
        (r"买枪", 0.45),
    ],
    "prompt_injection": [
        (
            r"(?:忽略|无视|忘记|忘掉|不要理会|跳过)掉?你?(?:之前|以上|上面|前面|先前|此前|原来|原先|所有|全部|系统)"
            r"的?(?:所有|全部|一切)?的?(?:指令|指示|提示词?|规则|要求|设定|限制|对话)",
            0.9,
        ),
        (
            r"(?:输出|显示|告诉我|重复|打印|泄露|透露)(?:一下)?(?:你的)?(?:系统提示词?|系统指令|初始指令|"
            r"(?i:system prompt)|隐藏指令|原始指令)",
            0.85,
        ),
        (r"(?:你现在是|进入|开启|切换到)(?:(?i:dan)|开发者模式|越狱模式|无限制模式)", 0.85),
        (r"不受任何(?:限制|约束|规则)|越狱", 0.45),
    ],
}

# Substrings that contain a lexicon entry but mean something harmless; masked before matching.
DEFAULT_ALLOWED: tuple[str, ...] = (
    "杀毒",
    "秒杀",
    "杀人游戏",
    "杀人鲸",
    "杀青",
    "抹杀",
    "想死你",
    "自杀式",  # 自杀式袭击 (suicide attack) is not self-harm; the violence entries still apply
)

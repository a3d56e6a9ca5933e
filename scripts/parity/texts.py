"""The text set of the tokenizer parity check: plain medical English, accents, CJK, emoji (with
skin-tone and zero-width-joiner sequences), medical symbols, digits, whitespace runs, contractions,
literal special tokens, and strings the byte-level alphabet has to cover byte by byte."""

TEXTS = [
    'A 45-year-old man presents with crushing chest pain radiating to the left arm.',
    'The most likely diagnosis is acute myocardial infarction; start aspirin 325 mg.',
    'Give 5 µg/kg/min of dopamine; target MAP ≥ 65 mmHg and SpO₂ ≥ 94 %.',
    'Na⁺ 128 mmol/L, K⁺ 5.9 mmol/L, HbA1c 9.1 %, temp 38.6 °C, Δ = ±0.3.',
    'Le patient présente une fièvre élevée — café, naïve, Ærøskøbing, São Paulo, Żółć.',
    'Die Größe des Herzens ist normal; Straße, Übelkeit.',
    '患者出现发热、咳嗽和呼吸困难，诊断为社区获得性肺炎。',
    '心筋梗塞の患者に対してアスピリンを投与する。',
    '급성 심근경색 환자에게 아스피린을 투여한다.',
    'Острый инфаркт миокарда: назначить аспирин.',
    'الاحتشاء القلبي الحاد',
    'Heart 🫀 lungs 🫁 pill 💊 syringe 💉 doctor 👩🏽‍⚕️ family 👨‍👩‍👧‍👦 flag 🇫🇷',
    "It's what they'd've said: DON'T stop, we'll see, I'm fine, you're right, they've gone.",
    'Numbers 1234567890 and 3.14159 and 1,000,000 and 0x1F.',
    '  leading spaces, trailing spaces   ',
    'tabs\tand\tnewlines\n\nand windows\r\nline ends\n',
    '\n\n\n',
    '    four-space indent\n        eight-space indent',
    '## Thinking\n\nThe patient is hypotensive.\n\n## Final Response\n\nThe answer is B.',
    '<|im_start|>user\nWhat is the dose?<|im_end|>\n<|im_start|>assistant\n',
    'text<|endoftext|>more text',
    'Decomposed accents: e\u0301 a\u0300 n\u0303 (NFC composes them).',
    'Zero\u200bwidth and non\u00a0breaking spaces and soft\u00adhyphen.',
    'Control \u0001 and \u007f bytes, replacement \ufffd, BOM \ufeff.',
    'Math: ∑ ∫ √ ∞ ≤ ≠ ≈ → ⇒ ∀ ∃; Greek: α β γ δ μ Ω.',
    '𝔸𝕓𝕔 mathematical letters and 𠀀 astral CJK.',
    '',
    ' ',
    'a',
]

CHATS = [
    [{'role': 'user', 'content': 'What lowers blood pressure?'}],
    [
        {'role': 'system', 'content': 'You are a careful physician.'},
        {'role': 'user', 'content': 'Dose of aspirin for MI? (≥ 160 mg)'},
        {'role': 'assistant', 'content': '## Thinking\n\nLoading dose.\n\n## Final Response\n\n162–325 mg chewed.'},
        {'role': 'user', 'content': '谢谢 🙏'},
    ],
]

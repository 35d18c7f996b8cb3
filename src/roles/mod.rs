//! What each model is asked and what it answers: the student's request, the teacher's review, the verdict, the skill and the output contract.

pub mod output_contract;
pub mod skill;
pub mod student;
pub mod teacher;
pub mod teacher_watches;
pub mod verdict;
